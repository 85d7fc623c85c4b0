// Opening hours: highlight today's row and say whether the shop is open now (Lyon time).
(() => {
  const table = document.querySelector('.hours');
  if (!table) return;
  const OPEN = 7 * 60, CLOSE = 19 * 60, CLOSED_DAY = 1; // Tuesday to Sunday, 7:00–19:00
  const fr = document.documentElement.lang === 'fr';
  const text = fr
    ? { open: 'Ouvert en ce moment, jusqu’à 19 h', today: 'Fermé · ouvre aujourd’hui à 7 h',
        tomorrow: 'Fermé · ouvre demain à 7 h', tuesday: 'Fermé · ouvre mardi à 7 h' }
    : { open: 'Open now, until 19:00', today: 'Closed now · opens today at 7:00',
        tomorrow: 'Closed now · opens tomorrow at 7:00', tuesday: 'Closed now · opens Tuesday at 7:00' };
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short',
    hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(new Date())) parts[p.type] = p.value;
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday);
  const now = Number(parts.hour) * 60 + Number(parts.minute);
  const row = table.querySelector(`tr[data-day="${day}"]`);
  if (row) row.classList.add('today');

  const status = document.getElementById('open-status');
  if (!status) return;
  const open = day !== CLOSED_DAY && now >= OPEN && now < CLOSE;
  let message = text.open;
  if (!open) {
    if (day === CLOSED_DAY || (day === 0 && now >= CLOSE)) message = text.tuesday;
    else message = now < OPEN ? text.today : text.tomorrow;
  }
  status.textContent = message;
  status.classList.toggle('is-open', open);
  status.hidden = false;
})();
