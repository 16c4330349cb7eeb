#!/usr/bin/env python3
"""A handover through the web pages in real headless Chromium, over the DevTools protocol.

Run by tests/browser.rs (which starts the server and makes the tokens); it needs Debian's
chromium and the websocket-client package (.ci/run installs both). Three people, each in a
browser context of their own (their own cookies): the project manager signs in and submits a
deliverable with a link; the approver requests changes; the manager's open page shows that
without a reload; he resubmits; the approver approves; the service manager accepts. Along the
way: the board and /me say what they should, user text is shown as text, a person without the
right role sees no button and a forged POST is refused. Exit 0 when every check holds; each
failed check is printed.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websocket

FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


class Browser:
    """One headless Chromium, driven over its DevTools websocket."""

    def __init__(self, chromium):
        self.dir = tempfile.mkdtemp(prefix="opsgate-chromium-")
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--remote-debugging-port=0",
             "--user-data-dir=" + self.dir, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = None
        deadline = time.time() + 30
        while time.time() < deadline and url is None:
            line = self.proc.stderr.readline()
            if "DevTools listening on " in line:
                url = line.split("DevTools listening on ", 1)[1].strip()
        if url is None:
            raise RuntimeError("chromium did not start")
        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def person(self):
        """A new browser context (its own cookies) with one page; its session id."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget", url="about:blank",
                           browserContextId=context)["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session)
        self.call("Runtime.enable", session)
        self.call("Emulation.setDeviceMetricsOverride", session, width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)
        return Page(self, session)

    def close(self):
        self.proc.kill()


class Page:
    def __init__(self, browser, session):
        self.b = browser
        self.s = session

    def eval(self, expression):
        result = self.b.call("Runtime.evaluate", self.s, expression=expression,
                             returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def go(self, url):
        self.eval("window.__before = true")
        self.b.call("Page.navigate", self.s, url=url)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.eval("window.__before === undefined && document.readyState === 'complete'"):
                    return
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not load")

    def text(self):
        return self.eval("document.body.innerText")

    def fill(self, selector, value):
        self.eval(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def click(self, selector):
        """Clicks something that does not leave the page (a radio button)."""
        self.eval(f"document.querySelector({json.dumps(selector)}).click()")

    def click_nav(self, selector):
        """Clicks a submit button and waits for the page the form leads to."""
        self.eval("window.__before = true")
        self.eval(f"document.querySelector({json.dumps(selector)}).click()")
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.eval("window.__before === undefined && document.readyState === 'complete'"):
                    return
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"clicking {selector} led nowhere")

    def upload(self, selector, path):
        """Chooses the file at `path` in the file input `selector`, as a person would."""
        node = self.b.call("Runtime.evaluate", self.s,
                           expression=f"document.querySelector({json.dumps(selector)})")
        self.b.call("DOM.setFileInputFiles", self.s, files=[path],
                    objectId=node["result"]["objectId"])

    def has(self, selector):
        return self.eval(f"document.querySelector({json.dumps(selector)}) !== null")

    def screenshot(self, path):
        data = self.b.call("Page.captureScreenshot", self.s, format="png")["data"]
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def sign_in(self, base, token):
        self.go(base + "/signin")
        self.fill("input[name=token]", token)
        self.click_nav("form.signin button")


AXE = None


def accessible(page, what):
    """axe-core (vendored: tests/browser/axe.min.js, MPL-2.0) finds no serious or critical
    violation on the page."""
    global AXE
    if AXE is None:
        import os
        with open(os.path.join(os.path.dirname(__file__), "axe.min.js")) as f:
            AXE = f.read()
    if not page.eval("typeof window.axe !== 'undefined'"):
        page.eval(AXE + "; true")
    found = page.eval(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.impact + ' ' + v.id + ': ' + v.help + ' (' + v.nodes.length + ' elements: '"
        " + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ') + ')'))")
    check(found == [], f"{what} has no serious or critical accessibility violation {found}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--transition", required=True)
    ap.add_argument("--pat", required=True)
    ap.add_argument("--dana", required=True)
    ap.add_argument("--sam", required=True)
    ap.add_argument("--screenshots")
    a = ap.parse_args()
    base = a.base
    page_url = f"{base}/transitions/{a.transition}"
    browser = Browser(a.chromium)
    try:
        pat, dana, sam = browser.person(), browser.person(), browser.person()
        pat.sign_in(base, a.pat)
        check("Pat" in pat.text(), "Pat is signed in and named on the page")
        board = pat.text()
        check("payroll 7.0" in board, "the board lists the transition")
        accessible(pat, "the board")
        pat.go(base + "/me")
        check("Submit 'D'" in pat.text(), "Pat's work: submit D")
        accessible(pat, "/me")
        if a.screenshots:
            pat.screenshot(a.screenshots + "/me.png")

        pat.go(page_url)
        check(pat.has("form[action$='/submit']"), "Pat's page offers to submit D")
        accessible(pat, "a transition page")
        pat.fill("form[action$='/submit'] textarea[name=links]", "https://wiki.example/d")
        pat.fill("form[action$='/submit'] textarea[name=text]", "<script>alert(1)</script>")
        runbook = b"# Payroll runbook\nRestart: systemctl restart payroll\n"
        with tempfile.TemporaryDirectory() as files:
            path = os.path.join(files, "payroll-runbook.md")
            with open(path, "wb") as f:
                f.write(runbook)
            pat.upload("form[action$='/submit'] input[type=file]", path)
            pat.click_nav("form[action$='/submit'] button")
        sha = hashlib.sha256(runbook).hexdigest()
        href = pat.eval("(() => { const a = document.querySelector('#node-d a[download]');"
                        " return a ? a.getAttribute('href') : null; })()")
        check(href == f"/transitions/{a.transition}/attachments/{sha}",
              f"the uploaded file is linked by its SHA-256 ({href})")
        got = pat.eval(f"fetch({json.dumps(href or '/')}).then(r => r.text())")
        check(got == runbook.decode(), "the file downloads with the bytes uploaded")
        check("submitted" in pat.eval("document.querySelector('#node-d .status').textContent"),
              "after the submission Pat's page says submitted")
        check(pat.eval("document.querySelector('#node-d .text').textContent")
              == "<script>alert(1)</script>", "the evidence text is shown as text")

        dana.sign_in(base, a.dana)
        if a.screenshots:
            dana.screenshot(a.screenshots + "/board.png")
        dana.go(page_url)
        check(not dana.has("form[action$='/accept']"), "Dana sees no acceptance button")
        check(dana.has("form[action$='/review']"), "Dana's page offers the review")
        dana.click("form[action$='/review'] input[value=request_changes]")
        dana.fill("form[action$='/review'] textarea[name=comment]", "add the escalation numbers")
        dana.click_nav("form[action$='/review'] button")
        check("changes requested" in dana.text().lower(), "Dana's request for changes is shown")

        # Pat's page, open all along, follows without a reload.
        deadline = time.time() + 8
        status = ""
        while time.time() < deadline:
            status = pat.eval("document.querySelector('#node-d .status').textContent")
            if "changes" in status:
                break
            time.sleep(0.2)
        check("changes" in status and pat.eval("document.querySelector('main').dataset.updated")
              is not None, "Pat's open page shows the request for changes without a reload")
        check("add the escalation numbers" in pat.text(), "and Dana's comment")

        pat.fill("form[action$='/submit'] textarea[name=links]", "https://wiki.example/d-v2")
        pat.click_nav("form[action$='/submit'] button")
        dana.go(page_url)
        dana.click("form[action$='/review'] input[value=approve]")
        dana.click_nav("form[action$='/review'] button")
        check("the operations gate is open" in dana.text().lower(), "after approval the gate is open")

        # A forged acceptance from Dana's browser (she is no service manager) is refused.
        status = dana.eval(
            "(() => { const csrf = document.querySelector('input[name=csrf]');"
            " const body = new URLSearchParams({csrf: csrf ? csrf.value : ''});"
            f" return fetch('/transitions/{a.transition}/accept', {{method: 'POST', body,"
            " redirect: 'manual'}).then(r => r.status); })()")
        check(status == 403, f"a forged acceptance by Dana is refused ({status})")
        # A POST from her signed-in browser without the page's CSRF token is refused too.
        status = dana.eval(
            f"fetch('/transitions/{a.transition}/review', {{method: 'POST',"
            " body: new URLSearchParams({node: 'd', decision: 'approve'}),"
            " redirect: 'manual'}).then(r => r.status)")
        check(status == 403, f"a POST without the CSRF token is refused ({status})")

        sam.sign_in(base, a.sam)
        sam.go(base + "/me")
        check("Accept or reject the handover" in sam.text(), "Sam's work: accept the handover")
        sam.go(page_url)
        if a.screenshots:
            sam.screenshot(a.screenshots + "/transition.png")
        sam.fill("form[action$='/accept'] textarea[name=comment]", "ours now")
        sam.click_nav("form[action$='/accept'] button")
        check("handover accepted" in sam.text(), "Sam accepted the handover")
        sam.go(base + "/me")
        check("Nothing waits on you" in sam.text(), "nothing waits on Sam any more")
        sam.go(base + "/stalled")
        check("Stalled work" in sam.text(), "the stalled list answers")
        accessible(sam, "the stalled list")
        sam.go(base + "/workflows")
        check("Workflows" in sam.text(), "the workflows page answers")
        accessible(sam, "the workflows page")
        sam.go(base + "/services/payroll")
        check("Versions" in sam.text() and "by Sam" in sam.text(),
              "the service's page lists the version Sam accepted")
        accessible(sam, "a service's page")
        sam.go(base + "/workflows/one")
        check("Roles and responsibilities" in sam.text(), "a workflow's process description answers")
        accessible(sam, "a workflow's process description")

        # A sign-in header from an address that is not the trusted proxy counts for nothing.
        request = urllib.request.Request(base + "/me", headers={"X-Forwarded-User": "Sam"})
        try:
            status = urllib.request.urlopen(request).status
        except urllib.error.HTTPError as e:
            status = e.code
        check(status == 401, f"a proxy user header from an untrusted address is ignored ({status})")
    finally:
        browser.close()
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
