// The API demo page. Every call goes through window.Porch: the queue stub from
// porch-queue.js until /widget.js arrives, then the widget itself.
(() => {
  const $ = (id) => document.getElementById(id);
  const ORDER = 'I would like to order a birthday cake for Saturday';
  const log = $('event-log');
  const count = $('unread-count');

  const note = (text) => {
    log.querySelector('.empty')?.remove();
    const item = document.createElement('li');
    item.textContent = `${new Date().toLocaleTimeString('en-GB')}  ${text}`;
    log.prepend(item);
    while (log.children.length > 25) log.lastElementChild.remove();
  };
  const call = (...args) => {
    window.Porch(...args);
    const shown = args.map((a) => `'${a}'`).join(', ');
    note(`Porch(${shown})${window.Porch.q ? '  queued: /widget.js has not loaded' : ''}`);
  };

  Porch('on', 'unread', (n) => {
    count.textContent = n;
    $('inbox').classList.toggle('has-unread', n > 0);
    note(`unread: ${n}`);
  });
  Porch('on', 'open', () => note('open'));
  Porch('on', 'close', () => note('close'));
  Porch('on', 'message', (m) => note(`message from ${m?.author}: “${m?.body ?? ''}”`));

  $('open-chat').addEventListener('click', () => call('open'));
  $('inbox').addEventListener('click', () => call('open'));
  $('send-order').addEventListener('click', () => { call('send', ORDER); call('open'); });
  for (const lang of ['fr', 'en']) {
    $(`lang-${lang}`).addEventListener('click', () => {
      call('setLanguage', lang);
      $('lang-fr').setAttribute('aria-pressed', String(lang === 'fr'));
      $('lang-en').setAttribute('aria-pressed', String(lang === 'en'));
    });
  }
})();
