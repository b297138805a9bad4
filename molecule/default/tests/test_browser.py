"""A person's visit in a real browser (headless Chromium driven by Selenium):
register, log in, start a topic (previewed first), reply to it, find it on
the board, log out; and a Chinese-speaking member's: register with a Chinese
name, post with an @mention and code, and the mentioned member finds the
notification. The new pages are photographed at desktop and phone width in
both languages (fonts-noto-cjk makes the Chinese ones readable).

Self-contained (no fixture of the scenario's conftest), so it also runs
against the `make demo` lab: `make demo-browser`, or

    FORUM_BASE_URL=https://127.0.0.1:8443/ FORUM_SERVER_NAME= \\
        .venv/bin/pytest --noconftest molecule/default/tests/test_browser.py

FORUM_BASE_URL     where the browser goes (default: the scenario's web host
                   by name, https://stack-web1/)
FORUM_SERVER_NAME  a host name the browser resolves to FORUM_ADDRESS itself
                   (nginx answers only to its server names); empty: none
FORUM_ADDRESS      the web host's address (default 172.29.10.11)

Screenshots of every step (and of the page a failed visit stopped at) go to
.cache/artifacts/browser/ in the repository (the Chinese visit's start zh-CN-).
Uses Debian's chromium and chromium-driver; Selenium Manager never runs.
"""
import os
import pathlib
import re
import shutil
import tempfile
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / ".cache" / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

SERVER_NAME = os.environ.get("FORUM_SERVER_NAME", "stack-web1")
ADDRESS = os.environ.get("FORUM_ADDRESS", "172.29.10.11")
BASE_URL = os.environ.get("FORUM_BASE_URL", f"https://{SERVER_NAME or ADDRESS}/").rstrip("/") + "/"
WAIT_SECONDS = 60
DESKTOP = (1280, 900)
PHONE = (390, 844)
CATALOG = REPO / "app/forum/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def _po_strings(text):
    """msgid -> msgstr of a .po file (joined continuation lines)."""
    strings = {}
    for entry in text.split("\n\n"):
        parts = re.findall(r'^(msgid|msgstr) ((?:"(?:[^"\\]|\\.)*"\n?)+)', entry, re.M)
        fields = {key: "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', value)).replace('\\"', '"')
                  for key, value in parts}
        if fields.get("msgid") and fields.get("msgstr"):
            strings[fields["msgid"]] = fields["msgstr"]
    return strings


def zh(msgid, **values):
    """The Chinese the forum shows for ``msgid`` (from its catalog)."""
    if not hasattr(zh, "strings"):
        zh.strings = _po_strings(CATALOG.read_text())
    return zh.strings[msgid] % values if values else zh.strings[msgid]


def chromium_options(user_data_dir, language=None):
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic",
        "--ignore-certificate-errors",  # the lab's certificate is self-signed
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    if language:
        options.add_argument(f"--lang={language}")
        options.add_experimental_option("prefs", {"intl.accept_languages": f"{language},zh"})
    if SERVER_NAME and ADDRESS:
        # Resolve the forum's name without DNS (and nothing else at all).
        options.add_argument(f"--host-resolver-rules=MAP {SERVER_NAME} {ADDRESS}, MAP * ~NOTFOUND")
    return options


def start_browser(language=None):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "needs Debian's chromium and chromium-driver packages"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from selenium.common.exceptions import SessionNotCreatedException

    profile = tempfile.mkdtemp(prefix="forum-browser-")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options(profile, language))
    except SessionNotCreatedException as error:
        # Chromium that did not come up in chromedriver's time on a busy
        # machine ("DevToolsActivePort file doesn't exist") gets one more go.
        print(f"Chromium did not start ({str(error).splitlines()[0]}); once more")
        shutil.rmtree(profile, ignore_errors=True)
        profile = tempfile.mkdtemp(prefix="forum-browser-")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options(profile, language))
    driver.set_page_load_timeout(WAIT_SECONDS)
    if language:  # what the forum negotiates on, whatever the headless build sends
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                               {"headers": {"Accept-Language": f"{language},zh;q=0.9"}})
    return driver, profile


@pytest.fixture(scope="module")
def browser():
    driver, profile = start_browser()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def zh_browser():
    driver, profile = start_browser("zh-CN")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# What chromedriver answers, instead of "stale element", when asked about a
# node of a page that is being replaced (a race of the old page's unload).
DETACHED = ("does not belong to the document", "Cannot find context with specified id")


def gone(element):
    """True once `element`'s page has been replaced by the next one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if any(text in str(error) for text in DETACHED):
            return True
        raise
    return False


class Visit:
    """The browser plus the screenshots taken so far."""

    def __init__(self, driver, prefix=""):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.prefix = prefix
        # A page replaced while being read is read again.
        self.wait = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
        self.shots = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{prefix}[0-9]*.png"):
            old.unlink()

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def fill(self, **fields):
        for name, value in fields.items():
            element = self.find(f"#{name}")
            element.clear()
            element.send_keys(value)

    def submit(self, css, expect):
        """Click `css` and wait for the next page to show the text `expect`."""
        old = self.find("body")
        self.find(css).click()
        self.wait.until(lambda driver: gone(old))
        self.wait.until(lambda driver: expect in self.text())

    def shot(self, name):
        path = ARTIFACTS / f"{self.prefix}{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        self.shots.append(path)

    def shot_both(self, name):
        """The page at desktop and at phone width (then back to desktop)."""
        self.shot(f"{name}-desktop")
        self.driver.set_window_size(*PHONE)
        try:
            self.shot(f"{name}-phone")
        finally:
            self.driver.set_window_size(*DESKTOP)


# Chromium drops every request in flight when the machine's addresses change
# (net::ERR_NETWORK_CHANGED): here, when another Molecule scenario creates or
# removes its Docker network while this one runs. A visit that stops on that
# error starts again from the front page with a new account; any other
# failure, or that one on every attempt, fails the test.
NETWORK_CHANGED = "ERR_NETWORK_CHANGED"
ATTEMPTS = 3


def network_changed(driver, error):
    if NETWORK_CHANGED in str(error):
        return True
    try:
        return NETWORK_CHANGED in driver.page_source
    except Exception:  # a browser that died shows no page
        return False


def visit_the_forum(browser, visit):
    """Register, log out and in, start a topic, reply, see it listed, log out."""
    from selenium.webdriver.common.by import By

    name = f"e2e_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    title = f"Hello from {name}"
    reply = f"A reply by {name} in a real browser."
    browser.get(BASE_URL)
    assert "Boards" in browser.find_element(By.TAG_NAME, "h1").text, browser.page_source[:500]
    visit.shot("front-page")

    visit.submit("nav.user-nav a[href$='/register']", "Register")
    visit.fill(username=name, email=f"{name}@example.org", password=password, confirm=password)
    visit.submit("form.stacked #submit", "Your account has been created")
    visit.shot("registered")

    # Registering logged us in; log out and back in with the password.
    visit.submit("nav.user-nav button.link-button", "You have been logged out")
    visit.submit("nav.user-nav a[href*='/login']", "Log in")
    visit.fill(username=name, password=password)
    visit.submit("form.stacked #submit", f"Logged in as {name}")
    assert name in visit.find("nav.user-nav").text
    visit.shot("logged-in")

    visit.submit("table.boards a.title", "New topic")
    board_url = browser.current_url
    visit.submit("a.button[href$='/new']", "Markdown is supported")
    visit.fill(title=title, body=f"Started by **{name}** from headless Chromium.\n\n```python\nprint('hi')\n```")
    visit.submit("form.stacked #preview", "not posted yet")
    assert visit.find("section.preview .post-body strong").text == name
    assert visit.find("section.preview pre.highlight span.nb").text == "print"
    visit.shot_both("preview")
    visit.submit("form.stacked #submit", title)
    assert visit.find("h1").text.strip() == title
    assert f"Started by {name} from headless Chromium." in visit.text()
    visit.shot("topic-created")

    visit.fill(body=reply)
    visit.submit("form.reply-form #submit", reply)
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.post")) == 2
    visit.shot("replied")

    browser.get(board_url)
    visit.wait.until(lambda driver: title in visit.text())
    row = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "table.topics tbody tr") if title in tr.text]
    assert row, visit.text()
    replies = row[0].find_element(By.CSS_SELECTOR, "td.num").text.strip()
    assert replies == "1", row[0].text
    assert name in row[0].text
    visit.shot("listed-on-board")

    visit.submit("nav.user-nav a.notifications-link", "Nothing yet")
    visit.shot_both("notifications")
    browser.get(BASE_URL + "account/settings")
    visit.wait.until(lambda driver: "Language and time zone" in visit.text())
    visit.shot_both("settings")

    visit.submit("nav.user-nav button.link-button", "You have been logged out")
    nav = visit.find("nav.user-nav").text
    assert "Log in" in nav and name not in nav
    assert not browser.find_elements(By.CSS_SELECTOR, "nav.user-nav button.link-button")
    # Starting a topic now asks for a login.
    browser.get(board_url.rstrip("/") + "/new")
    visit.wait.until(lambda driver: "/login" in driver.current_url)
    visit.shot("logged-out")
    visit.submit("a[href$='/password/forgot']", "Forgot your password?")
    visit.shot_both("forgot-password")


def register(visit, name, password):
    visit.submit("nav.user-nav a[href$='/register']", zh("Register"))
    visit.fill(username=name, email=f"{uuid.uuid4().hex[:12]}@example.org", password=password, confirm=password)
    visit.submit("form.stacked #submit", zh("Welcome! Your account has been created."))


def a_chinese_members_visit(browser, visit):
    """张三丰 registers, previews and posts a topic that mentions 李四 and holds
    code; 李四 logs in, sees the unread count and opens the notification."""
    from selenium.webdriver.common.by import By

    tag = uuid.uuid4().hex[:4]
    author, mentioned = f"张三丰{tag}", f"李四{tag}"
    password = uuid.uuid4().hex
    title = f"数据库恢复问题 {tag}"
    browser.get(BASE_URL)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang").startswith("zh")
    assert zh("Boards") in browser.find_element(By.TAG_NAME, "h1").text, browser.page_source[:500]
    visit.shot_both("front-page")

    register(visit, mentioned, password)
    visit.submit("nav.user-nav button.link-button", zh("You have been logged out."))
    register(visit, author, password)
    assert author in visit.find("nav.user-nav").text

    visit.submit("table.boards a.title", zh("New topic"))
    visit.submit("a.button[href$='/new']", zh("Markdown is supported."))
    visit.fill(title=title, body=f"请教 @{mentioned}：怎么恢复到某个时间点？\n\n```python\nprint('你好')\n```")
    visit.submit("form.stacked #preview", zh("not posted yet: edit below, then send"))
    assert visit.find("section.preview a.mention").text == f"@{mentioned}"
    visit.shot_both("preview")
    visit.submit("form.stacked #submit", title)
    assert visit.find("article.post a.mention").text == f"@{mentioned}"
    assert visit.find("article.post pre.highlight span.nb").text == "print"
    assert "你好" in visit.find("article.post pre.highlight").text
    visit.shot_both("topic-with-mention-and-code")

    visit.submit("nav.user-nav button.link-button", zh("You have been logged out."))
    visit.submit("nav.user-nav a[href*='/login']", zh("Log in"))
    visit.fill(username=mentioned, password=password)
    visit.submit("form.stacked #submit", zh("Logged in as %(name)s.", name=mentioned))
    assert visit.find("nav.user-nav a.notifications-link .badge").text == "1"
    visit.shot_both("unread-count")
    visit.submit("nav.user-nav a.notifications-link", title)
    item = visit.find("li.notification.unread")
    assert author in item.text and title in item.text, item.text
    visit.shot_both("notifications")
    visit.submit("li.notification a", f"请教 @{mentioned}")
    assert not browser.find_elements(By.CSS_SELECTOR, "nav.user-nav a.notifications-link .badge")
    visit.shot_both("notification-opened")
    browser.get(BASE_URL + "account/settings")
    visit.wait.until(lambda driver: zh("Language and time zone") in visit.text())
    visit.shot_both("settings")

    visit.submit("nav.user-nav button.link-button", zh("You have been logged out."))
    browser.get(BASE_URL + "password/forgot")
    visit.wait.until(lambda driver: zh("Forgot your password?") in visit.text())
    visit.shot_both("forgot-password")


def test_a_visitor_registers_posts_replies_and_logs_out(browser, capsys):
    run_visit(browser, capsys, visit_the_forum)


def test_a_chinese_member_mentions_another_who_is_notified(zh_browser, capsys):
    run_visit(zh_browser, capsys, a_chinese_members_visit, prefix="zh-CN-")


def run_visit(browser, capsys, visit_fn, prefix=""):
    for attempt in range(1, ATTEMPTS + 1):
        visit = Visit(browser, prefix)
        try:
            visit_fn(browser, visit)
            return
        except BaseException as error:
            if attempt < ATTEMPTS and isinstance(error, Exception) and network_changed(browser, error):
                with capsys.disabled():
                    print(f"\nattempt {attempt}: Chromium saw the network change ({NETWORK_CHANGED}); again")
                # Whatever account the broken visit left logged in is forgotten.
                browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
                continue
            # The page the visit stopped at, for whoever reads the failure.
            try:
                visit.shot("failed")
            except Exception as shot_error:  # a browser that died takes no screenshot
                print(f"no screenshot of the failure: {shot_error}")
            raise
        finally:
            with capsys.disabled():
                print()
                for path in visit.shots:
                    print(f"screenshot: {path}")
