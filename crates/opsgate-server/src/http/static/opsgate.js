// opsgate's one script (served by the server itself; the pages work without it): keeps an open
// transition page current. When the server says the transition changed, the page is read again
// and its content replaced, unless the person has typed into one of its forms: then a note
// offers the reload instead, so nobody loses what they were writing.
(function () {
  'use strict';
  var main = document.querySelector('main[data-live]');
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  function typing() {
    var fields = main.querySelectorAll('textarea, input');
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === 'hidden' || f.type === 'radio') {
        if (f.type === 'radio' && f.checked !== f.defaultChecked) { return true; }
        continue;
      }
      if (f.value !== f.defaultValue) { return true; }
    }
    return false;
  }
  function note() {
    if (document.getElementById('live-note')) { return; }
    var p = document.createElement('p');
    p.id = 'live-note';
    p.className = 'live-note';
    p.setAttribute('role', 'status');
    p.appendChild(document.createTextNode('Someone else changed this transition. '));
    var a = document.createElement('a');
    a.href = window.location.pathname;
    a.appendChild(document.createTextNode('Show the new state'));
    p.appendChild(a);
    main.insertBefore(p, main.firstChild);
  }
  var source = new EventSource(main.getAttribute('data-live'));
  source.addEventListener('changed', function () {
    if (typing()) { note(); return; }
    window.fetch(window.location.pathname, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        if (fresh) {
          main.innerHTML = fresh.innerHTML;
          main.setAttribute('data-updated', String(Date.now()));
        }
      })
      .catch(function () { note(); });
  });
})();
