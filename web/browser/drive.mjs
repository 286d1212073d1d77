// Drives Debian's Chromium (headless) over the page that scripts/web.sh serves, with
// playwright-core (which downloads no browser of its own):
//
//   node drive.mjs screenshot URL FILE   the page once drawn, the pointer over the latent
//                                        plane, saved as a PNG (README's picture)
//   node drive.mjs timing URL            the time per digit the page measures for each of
//                                        models/default's files, as JSON (bench-web.sh)
//
// CHROMIUM names another Chromium binary (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [command, url, file] = process.argv.slice(2);
if (!["screenshot", "timing"].includes(command) || !url || (command === "screenshot" && !file)) {
  console.error("usage: node drive.mjs screenshot URL FILE | timing URL");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  if (command === "screenshot") {
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("plane-caption").textContent.includes("z ="));
    await page.locator("#plane-canvas").scrollIntoViewIfNeeded();
    const box = await page.locator("#plane-canvas").boundingBox();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height * 0.45);
    await page.screenshot({ path: file, fullPage: true });
  } else {
    await page.goto(`${url}?timing`);
    await page.waitForFunction(() => document.title === "check done", null, { timeout: 300000 });
    console.log(await page.textContent("#check"));
  }
  if (errors.length) throw new Error(`the page failed: ${errors.join("; ")}`);
} finally {
  await browser.close();
}
