import pytest

from wsss.data.classes import IGNORE_INDEX, NUM_CLASSES, VOC_CLASSES, class_id, class_name
from wsss.errors import WsssError


def test_voc_class_table():
    assert NUM_CLASSES == 21 and len(VOC_CLASSES) == 21 and IGNORE_INDEX == 255
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[1] == "aeroplane"
    assert VOC_CLASSES[15] == "person" and VOC_CLASSES[20] == "tvmonitor"


def test_class_id_and_aliases():
    assert class_id("dog") == 12
    assert class_id("potted plant") == 16 and class_id("tv/monitor") == 20 and class_id(" Person ") == 15
    assert class_name(9) == "chair" and class_name(255) == "ignore"


def test_unknown_class_name_names_file():
    with pytest.raises(WsssError, match=r"^a\.xml: unknown class name 'dinosaur'"):
        class_id("dinosaur", where="a.xml")
