"""A person's visit in a real browser (headless Chromium driven by Selenium):
register, log in, start a topic, reply to it, find it on the board, log out.

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
.cache/artifacts/browser/ in the repository.
Uses Debian's chromium and chromium-driver; Selenium Manager never runs.
"""
import os
import pathlib
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


def chromium_options(user_data_dir):
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic",
        "--ignore-certificate-errors",  # the lab's certificate is self-signed
        "--window-size=1280,900",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    if SERVER_NAME and ADDRESS:
        # Resolve the forum's name without DNS (and nothing else at all).
        options.add_argument(f"--host-resolver-rules=MAP {SERVER_NAME} {ADDRESS}, MAP * ~NOTFOUND")
    return options


@pytest.fixture(scope="module")
def browser():
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
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options(profile))
    except SessionNotCreatedException as error:
        # Chromium that did not come up in chromedriver's time on a busy
        # machine ("DevToolsActivePort file doesn't exist") gets one more go.
        print(f"Chromium did not start ({str(error).splitlines()[0]}); once more")
        shutil.rmtree(profile, ignore_errors=True)
        profile = tempfile.mkdtemp(prefix="forum-browser-")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options(profile))
    driver.set_page_load_timeout(WAIT_SECONDS)
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

    def __init__(self, driver):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        # A page replaced while being read is read again.
        self.wait = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
        self.shots = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
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
        path = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        self.shots.append(path)


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
    visit.fill(title=title, body=f"Started by **{name}** from headless Chromium.")
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

    visit.submit("nav.user-nav button.link-button", "You have been logged out")
    nav = visit.find("nav.user-nav").text
    assert "Log in" in nav and name not in nav
    assert not browser.find_elements(By.CSS_SELECTOR, "nav.user-nav button.link-button")
    # Starting a topic now asks for a login.
    browser.get(board_url.rstrip("/") + "/new")
    visit.wait.until(lambda driver: "/login" in driver.current_url)
    visit.shot("logged-out")


def test_a_visitor_registers_posts_replies_and_logs_out(browser, capsys):
    for attempt in range(1, ATTEMPTS + 1):
        visit = Visit(browser)
        try:
            visit_the_forum(browser, visit)
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
