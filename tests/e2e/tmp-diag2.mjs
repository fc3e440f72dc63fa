import { register } from './app.js';
import { MissiveServer, launchBrowser, newDevice, uniqueName, delay } from './harness.js';
const server = new MissiveServer();
await server.start();
const browser = await launchBrowser();
for (let run = 0; run < 12; run++) {
  const dev = await newDevice(browser, server.url);
  await dev.context.grantPermissions(['notifications'], { origin: server.url });
  const page = await dev.newPage();
  const cdp = await dev.context.newCDPSession(page);
  const log = [];
  const t0 = Date.now();
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => log.push([Date.now() - t0, 'reg', JSON.stringify(e.registrations)]));
  cdp.on('ServiceWorker.workerVersionUpdated', (e) => log.push([Date.now() - t0, 'ver', JSON.stringify(e.versions.map((v) => [v.versionId, v.runningStatus, v.status]))]));
  cdp.on('ServiceWorker.workerErrorReported', (e) => log.push([Date.now() - t0, 'err', JSON.stringify(e.errorMessage)]));
  await cdp.send('ServiceWorker.enable');
  await register(page, uniqueName('bob'));
  await page.evaluate(() => navigator.serviceWorker.ready);
  const regs = log.filter((l) => l[1] === 'reg').flatMap((l) => JSON.parse(l[2])).filter((r) => !r.isDeleted); const regId = regs[regs.length - 1].registrationId;
  log.push([Date.now() - t0, 'push']);
  const res = await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: regId, data: JSON.stringify({ thread_id: 't1', subject: 'S', sender: 'a', preview: 'p' }) });
  log.push([Date.now() - t0, 'pushed', JSON.stringify(res)]);
  let ok = false;
  await delay(1500);
  for (let i = 0; i < 30 && !ok; i++) {
    const ns = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.length));
    ok = ns > 0;
    if (!ok) await delay(100);
  }
  log.push([Date.now() - t0, ok ? 'SHOWN' : 'NOT SHOWN']);
  console.log(`run ${run}: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) {
    const sw = dev.context.serviceWorkers()[0];
    console.log('   sw workers', dev.context.serviceWorkers().length);
    if (sw) {
      console.log('   in sw:', await sw.evaluate(async () => {
        const out = { permission: Notification.permission, pushes: self.__pushes, shows: JSON.stringify(self.__shows), age: Date.now() - self.__started };
        try { await self.registration.showNotification('direct', { tag: 'direct' }); out.direct = 'ok'; } catch (e) { out.direct = String(e); }
        out.count = (await self.registration.getNotifications()).length;
        return out;
      }));
    }
    console.log('   page permission', await page.evaluate(() => Notification.permission));
    const r2 = await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: regId, data: JSON.stringify({ thread_id: 't2', subject: 'S', sender: 'a', preview: 'p' }) });
    await delay(1000);
    console.log('   after 2nd push', await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.map((x) => x.tag))));
  }
  await dev.context.close();
}
await browser.close();
await server.stop();
server.cleanup();
