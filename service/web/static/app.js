// callguard's pages, made quicker where JavaScript runs; every page works without it, but
// for sending a report, whose proof of work (service/web/proof.py) is found here.
"use strict";

// SHA-256 (FIPS 180-4) of a string's UTF-8 bytes; the first 32 bits, as an unsigned number,
// and whether the rest of the leading `bits` are zero.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const W = new Uint32Array(64);

function sha256(bytes) {
  const length = bytes.length;
  const blocks = ((length + 9 + 63) >> 6) << 6;
  const data = new Uint8Array(blocks);
  data.set(bytes);
  data[length] = 0x80;
  const bitLength = length * 8;
  data[blocks - 4] = bitLength >>> 24;
  data[blocks - 3] = bitLength >>> 16;
  data[blocks - 2] = bitLength >>> 8;
  data[blocks - 1] = bitLength;
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  for (let offset = 0; offset < blocks; offset += 64) {
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      W[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }
  return h;
}

function solves(digest, bits) {
  for (let word = 0; bits > 0; word++, bits -= 32) {
    const shift = bits >= 32 ? 0 : 32 - bits;
    if (digest[word] >>> shift !== 0) return false;
  }
  return true;
}

const encoder = new TextEncoder();

// The answer to a challenge "issued.random.bits.signature": the first number n whose
// SHA-256("challenge:n") starts with `bits` zero bits. Worked in slices, so the page stays
// responsive.
function solve(challenge) {
  const bits = Number(challenge.split(".")[2]);
  return new Promise((resolve) => {
    let n = 0;
    function slice() {
      for (const end = n + 20000; n < end; n++) {
        if (solves(sha256(encoder.encode(challenge + ":" + n)), bits)) {
          resolve(String(n));
          return;
        }
      }
      setTimeout(slice, 0);
    }
    slice();
  });
}

function onReport(form) {
  form.addEventListener("submit", (event) => {
    const answer = form.elements.answer;
    if (answer.value) return; // solved: let the browser post it
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const status = form.querySelector("[data-status]");
    button.disabled = true;
    status.textContent = button.dataset.sending;
    solve(form.elements.challenge.value).then((found) => {
      answer.value = found;
      form.submit();
    });
  });
}

// The number box: fetch the number's page and show it in place, falling back to the plain
// form whenever anything goes wrong.
function onLookup(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = form.action + "?" + new URLSearchParams(new FormData(form));
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const main = page.querySelector("main");
      if (!main) throw new Error("no page");
      show(page, main, response.url);
    } catch (error) {
      window.location.href = url;
    }
  });
}

function show(page, main, url) {
  document.querySelector("main").replaceWith(document.adoptNode(main));
  document.title = page.title;
  const here = document.querySelector("[data-lang-switch]");
  const there = page.querySelector("[data-lang-switch]");
  if (here && there) here.href = there.getAttribute("href");
  if (url !== window.location.href) history.pushState(null, "", url);
  enhance(document);
  const heading = document.querySelector("main h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

function enhance(root) {
  root.querySelectorAll("form[data-form=lookup]").forEach(onLookup);
  root.querySelectorAll("form[data-form=report]").forEach(onReport);
}

window.addEventListener("popstate", () => window.location.reload());
enhance(document);
