/* wsss gallery: renders one page of images from window.WSSS_GALLERY (data.js).
 *
 * State (sort, order, filters, page, page size, hidden columns, label opacity) lives in the URL's
 * "#", e.g. index.html#sort=iou:pseudolabels&order=asc&page=2, so a view can be bookmarked or shared.
 * Sort keys: "id", "iou:<stage>" (per-image mIoU of a stage), "delta:<stage>" (its change over the
 * previous stage). The IoU range filter applies to the sort key's value (the last stage's IoU for "id").
 */
(function () {
  'use strict';

  const data = window.WSSS_GALLERY;
  if (!data || !Array.isArray(data.images)) {
    throw new Error('gallery data missing: data.js did not define window.WSSS_GALLERY');
  }
  const stages = data.stages;
  const images = data.images;
  const lastStage = stages.length ? stages[stages.length - 1].name : null;
  const classById = new Map(data.classes.map((c) => [c.id, c]));
  const stageIndex = new Map(stages.map((s, i) => [s.name, i]));

  const columns = [{ key: 'photo', title: 'photo' }];
  if (data.superpixel_column) columns.push({ key: 'superpixels', title: 'superpixels' });
  columns.push({ key: 'gt', title: 'ground truth' });
  if (data.cam_column) columns.push({ key: 'cam', title: 'CAM' });
  // a stage's title says how its CAMs were upsampled where that is not bilinear (MSA's superpixel-upsampled cam)
  stages.forEach((s, i) => columns.push({ key: 'stage:' + s.name, title: s.title || s.name, stage: i }));

  const defaults = {
    sort: lastStage ? 'iou:' + lastStage : 'id', order: 'asc', page: 1, size: data.page_size,
    cls: '', q: '', min: '', max: '', hide: '', opacity: 1,
  };
  let state = Object.assign({}, defaults);

  // ------------------------------------------------------------------ state <-> URL hash
  function readHash() {
    const next = Object.assign({}, defaults);
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    for (const [key, value] of params) {
      if (!(key in defaults)) continue;
      next[key] = typeof defaults[key] === 'number' ? Number(value) : value;
    }
    if (!Number.isFinite(next.page) || next.page < 1) next.page = 1;
    if (!Number.isFinite(next.size) || next.size < 1) next.size = defaults.size;
    if (!Number.isFinite(next.opacity)) next.opacity = 1;
    if (!sortKeys().some((k) => k.value === next.sort)) next.sort = defaults.sort;
    return next;
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const key of Object.keys(defaults)) {
      if (String(state[key]) !== String(defaults[key])) params.set(key, String(state[key]));
    }
    const hash = params.toString();
    const url = window.location.href.replace(/#.*$/, '') + (hash ? '#' + hash : '');
    try {
      window.history.replaceState(null, '', url);
    } catch (err) {
      window.location.hash = hash;
    }
  }

  // ------------------------------------------------------------------ values, sort and filter
  function sortKeys() {
    const keys = [{ value: 'id', label: 'image id' }];
    stages.forEach((s, i) => keys.push({ value: 'iou:' + s.name, label: s.name + ' IoU' }));
    stages.forEach((s, i) => {
      if (i > 0) keys.push({ value: 'delta:' + s.name, label: s.name + ' − ' + stages[i - 1].name });
    });
    if (data.pairwise) {
      // every ordered pair (a recipe comparison): find where one method wins over another
      stages.forEach((a, i) => stages.forEach((b, j) => {
        if (i !== j && j !== i - 1) keys.push({ value: 'diff:' + a.name + '|' + b.name, label: a.name + ' − ' + b.name });
      }));
    }
    return keys;
  }

  function sortLabel(key) {
    const found = sortKeys().find((k) => k.value === key);
    return found ? found.label : key;
  }

  function valueOf(image, key) {
    const [kind, name] = key.split(/:(.*)/s);
    if (kind === 'id') return lastStage === null ? null : image.iou[stages.length - 1];
    if (kind === 'diff') {
      const [first, second] = name.split('|');
      const ia = stageIndex.get(first);
      const ib = stageIndex.get(second);
      if (ia === undefined || ib === undefined) return null;
      const a = image.iou[ia];
      const b = image.iou[ib];
      return a === null || b === null || a === undefined || b === undefined ? null : a - b;
    }
    const i = stageIndex.get(name);
    if (i === undefined) return null;
    if (kind === 'iou') return image.iou[i];
    if (kind === 'delta') {
      const a = image.iou[i];
      const b = image.iou[i - 1];
      return a === null || b === null || b === undefined ? null : a - b;
    }
    return null;
  }

  function selection() {
    const q = state.q.trim().toLowerCase();
    const cls = state.cls === '' ? null : Number(state.cls);
    const min = state.min === '' ? null : Number(state.min);
    const max = state.max === '' ? null : Number(state.max);
    const rows = images.filter((image) => {
      if (q && !image.id.toLowerCase().includes(q)) return false;
      if (cls !== null && !image.classes.includes(cls) && !image.tags.includes(cls)) return false;
      if (min !== null || max !== null) {
        const v = valueOf(image, state.sort);
        if (v === null) return false;
        if (min !== null && v < min) return false;
        if (max !== null && v > max) return false;
      }
      return true;
    });
    const sign = state.order === 'desc' ? -1 : 1;
    if (state.sort === 'id') {
      rows.sort((a, b) => sign * (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    } else {
      rows.sort((a, b) => {
        const va = valueOf(a, state.sort);
        const vb = valueOf(b, state.sort);
        if (va === null || vb === null) {
          if (va === vb) return a.id < b.id ? -1 : 1;
          return va === null ? 1 : -1; // images without a value always last
        }
        return sign * (va - vb) || (a.id < b.id ? -1 : 1);
      });
    }
    return rows;
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function path(...parts) {
    return parts.map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/');
  }

  function img(src, image, cls, alt) {
    return el('img', {
      src, class: cls, alt, loading: 'lazy', decoding: 'async',
      width: image.thumb[1], height: image.thumb[0],
    });
  }

  function iouColor(v) {
    const hue = Math.max(0, Math.min(100, v)) * 1.2; // 0 red .. 120 green
    return 'hsl(' + hue.toFixed(0) + ', 70%, 32%)';
  }

  function fmt(v) {
    return v === null || v === undefined ? '–' : v.toFixed(1);
  }

  function chip(classId) {
    const c = classById.get(classId) || { name: 'class ' + classId, color: '#999' };
    return el('span', { class: 'chip' }, [
      el('span', { class: 'sw', style: 'background:' + c.color }), document.createTextNode(' ' + c.name),
    ]);
  }

  function labelCell(image, thumb, href, caption) {
    const stack = el('span', { class: 'stack' }, [
      img(path('thumbs/photo', image.id + '.jpg'), image, 'photo', ''),
      img(thumb, image, 'lab', caption ? caption.textContent : ''),
    ]);
    return el('figure', {}, [href ? el('a', { href, target: '_blank' }, [stack]) : stack, caption]);
  }

  function cell(column, image) {
    const td = el('td', { 'data-col': column.key });
    if (column.key === 'photo') {
      td.appendChild(el('a', { href: image.photo, target: '_blank' }, [
        img(path('thumbs/photo', image.id + '.jpg'), image, 'photo', image.id),
      ]));
    } else if (column.key === 'superpixels') {
      if (image.superpixels) {
        td.appendChild(el('a', { href: image.photo, target: '_blank' }, [
          img(path('thumbs/superpixels', image.id + '.jpg'), image, 'superpixels', 'superpixels of ' + image.id),
        ]));
      } else {
        td.appendChild(el('div', { class: 'missing', text: 'no superpixels' }));
      }
    } else if (column.key === 'gt') {
      if (image.gt) {
        td.appendChild(labelCell(image, path('thumbs/gt', image.id + '.png'), image.gt,
          el('figcaption', { text: 'ground truth' })));
      } else {
        td.appendChild(el('div', { class: 'missing', text: 'no ground truth' }));
      }
    } else if (column.key === 'cam') {
      if (image.cams.length) {
        // several classes: half-size maps two per row, so the column stays one thumbnail wide
        const scale = image.cams.length > 1 ? 0.5 : 1;
        td.appendChild(el('div', { class: 'cams', style: 'width:' + (image.thumb[1] + 4) + 'px' },
          image.cams.map((c) => el('figure', { 'data-class': c }, [
            el('img', {
              src: path('thumbs/heat', image.id + '_' + c + '.jpg'), class: 'heat', alt: 'CAM ' + c,
              loading: 'lazy', decoding: 'async',
              width: Math.round(image.thumb[1] * scale), height: Math.round(image.thumb[0] * scale),
            }),
            el('figcaption', {}, [chip(c)]),
          ]))));
      } else {
        td.appendChild(el('div', { class: 'missing', text: 'no CAM' }));
      }
    } else {
      const i = column.stage;
      const stage = stages[i];
      td.setAttribute('data-stage', stage.name);
      if (image.has[i]) {
        const v = image.iou[i];
        const caption = el('figcaption', {}, []);
        if (v !== null) {
          caption.appendChild(el('span', { style: 'color:' + iouColor(v), text: 'IoU ' + fmt(v) }));
          const prev = i > 0 ? image.iou[i - 1] : null;
          if (prev !== null && prev !== undefined) {
            const d = v - prev;
            caption.appendChild(el('span', {
              class: d >= 0 ? 'delta-up' : 'delta-down', text: ' (' + (d >= 0 ? '+' : '') + d.toFixed(1) + ')',
            }));
          }
        } else {
          caption.textContent = stage.name;
        }
        td.appendChild(labelCell(image, path('thumbs/labels', stage.name, image.id + '.png'),
          path(stage.href, image.id + '.png'), caption));
      } else {
        td.appendChild(el('div', { class: 'missing', text: 'no output' }));
      }
    }
    return td;
  }

  // ------------------------------------------------------------------ rendering
  function visibleColumns() {
    const hidden = new Set(state.hide ? state.hide.split(',') : []);
    return columns.filter((c) => !hidden.has(c.key));
  }

  function renderTable(rows) {
    const shown = visibleColumns();
    const head = el('tr', {}, [el('th', { text: 'image' })].concat(shown.map((c) => {
      const th = el('th', { 'data-col': c.key, text: c.title });
      if (c.stage !== undefined) th.appendChild(el('small', { text: 'mIoU ' + fmt(stages[c.stage].miou) }));
      return th;
    })));
    const body = el('tbody', {}, rows.map((image) => {
      const v = state.sort === 'id' ? null : valueOf(image, state.sort);
      const label = el('th', { scope: 'row' }, [
        el('div', { class: 'id', text: image.id }),
        state.sort === 'id' ? null : el('div', { class: 'value', text: sortLabel(state.sort) + ': ' + fmt(v) }),
        el('div', { class: 'chips' }, image.classes.map(chip)),
      ]);
      return el('tr', { 'data-id': image.id }, [label].concat(shown.map((c) => cell(c, image))));
    }));
    const table = el('table', { class: 'images' }, [el('thead', {}, [head]), body]);
    const box = document.getElementById('gallery');
    box.replaceChildren(table);
  }

  function renderPagers(total, pages) {
    for (const nav of document.querySelectorAll('[data-pager]')) {
      const first = (state.page - 1) * state.size;
      const button = (text, page, title) => {
        const b = el('button', { type: 'button', title, text });
        b.disabled = page < 1 || page > pages || page === state.page;
        b.addEventListener('click', () => go(page));
        return b;
      };
      const input = el('input', { type: 'number', min: 1, max: pages, value: state.page, 'aria-label': 'page' });
      input.addEventListener('change', () => go(Number(input.value)));
      nav.replaceChildren(
        button('«', 1, 'first page'), button('‹', state.page - 1, 'previous page (←)'),
        el('span', { text: 'page' }), input, el('span', { text: 'of ' + pages }),
        button('›', state.page + 1, 'next page (→)'), button('»', pages, 'last page'),
        el('span', {
          class: 'count',
          text: total ? (first + 1) + '–' + Math.min(first + state.size, total) + ' of ' + total + ' images' +
            (total < images.length ? ' (filtered from ' + images.length + ')' : '') : 'no image matches',
        }),
      );
    }
  }

  function syncControls() {
    document.getElementById('sort').value = state.sort;
    document.getElementById('order').value = state.order;
    document.getElementById('min').value = state.min;
    document.getElementById('max').value = state.max;
    document.getElementById('cls').value = state.cls;
    document.getElementById('q').value = state.q;
    const size = document.getElementById('size');
    if (![...size.options].some((o) => o.value === String(state.size))) {
      size.appendChild(el('option', { text: String(state.size) }));
    }
    size.value = String(state.size);
    document.getElementById('opacity').value = state.opacity;
    document.documentElement.style.setProperty('--label-opacity', String(state.opacity));
    const hidden = new Set(state.hide ? state.hide.split(',') : []);
    for (const box of document.querySelectorAll('#toggles input')) box.checked = !hidden.has(box.value);
    for (const row of document.querySelectorAll('table.metrics tbody tr[data-stage]')) {
      row.classList.toggle('current', state.sort === 'iou:' + row.getAttribute('data-stage'));
    }
  }

  // errors inside file:// scripts reach window.onerror only as "Script error.": report the real message
  function fail(err) {
    const text = (err && (err.stack || err.message)) || String(err);
    if (window.WSSS_REPORT_ERROR) window.WSSS_REPORT_ERROR(text.split('\n').slice(0, 2).join(' '));
    console.error(err);
  }

  function render() {
    try {
      renderNow();
    } catch (err) {
      fail(err);
    }
  }

  function renderNow() {
    const rows = selection();
    const pages = Math.max(1, Math.ceil(rows.length / state.size));
    state.page = Math.min(Math.max(1, state.page), pages);
    const start = (state.page - 1) * state.size;
    syncControls();
    renderTable(rows.slice(start, start + state.size));
    renderPagers(rows.length, pages);
    writeHash();
    document.body.setAttribute('data-ready', '1');
    document.body.setAttribute('data-shown', String(Math.min(state.size, Math.max(0, rows.length - start))));
  }

  function go(page) {
    state.page = page;
    render();
    document.getElementById('controls').scrollIntoView({ block: 'start' });
  }

  function update(changes) {
    Object.assign(state, changes, { page: 1 });
    render();
  }

  // ------------------------------------------------------------------ controls
  function setupControls() {
    const sort = document.getElementById('sort');
    for (const key of sortKeys()) sort.appendChild(el('option', { value: key.value, text: key.label }));
    const cls = document.getElementById('cls');
    const present = new Set();
    for (const image of images) for (const c of image.classes.concat(image.tags)) present.add(c);
    for (const c of data.classes) {
      if (present.has(c.id)) cls.appendChild(el('option', { value: c.id, text: c.name }));
    }
    const toggles = document.getElementById('toggles');
    toggles.appendChild(document.createTextNode('columns:'));
    for (const c of columns) {
      const box = el('input', { type: 'checkbox', value: c.key });
      box.addEventListener('change', () => {
        const hidden = [...document.querySelectorAll('#toggles input')].filter((b) => !b.checked).map((b) => b.value);
        update({ hide: hidden.join(',') });
      });
      toggles.appendChild(el('label', {}, [box, document.createTextNode(' ' + c.title)]));
    }
    sort.addEventListener('change', () => update({ sort: sort.value }));
    const order = document.getElementById('order');
    order.addEventListener('change', () => update({ order: order.value }));
    for (const id of ['min', 'max', 'q']) {
      const input = document.getElementById(id);
      input.addEventListener('input', () => update({ [id]: input.value }));
    }
    cls.addEventListener('change', () => update({ cls: cls.value }));
    const size = document.getElementById('size');
    size.addEventListener('change', () => update({ size: Number(size.value) }));
    const opacity = document.getElementById('opacity');
    opacity.addEventListener('input', () => {
      state.opacity = Number(opacity.value);
      document.documentElement.style.setProperty('--label-opacity', String(state.opacity));
      writeHash();
    });
    for (const row of document.querySelectorAll('table.metrics tbody tr[data-stage]')) {
      const name = row.getAttribute('data-stage');
      if (!stageIndex.has(name)) continue;
      row.classList.add('js-sortable');
      row.title = 'show the images of ' + name + ', worst first';
      row.addEventListener('click', () => update({ sort: 'iou:' + name, order: 'asc' }));
    }
    document.addEventListener('keydown', (event) => {
      const tag = (event.target && event.target.tagName) || '';
      if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') return;
      if (event.key === 'ArrowRight') go(state.page + 1);
      if (event.key === 'ArrowLeft') go(state.page - 1);
    });
    window.addEventListener('hashchange', () => {
      state = readHash();
      render();
    });
  }

  try {
    setupControls();
    state = readHash();
  } catch (err) {
    fail(err);
  }
  render();
})();
