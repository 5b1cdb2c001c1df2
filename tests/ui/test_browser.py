"""The whole UI flow in real headless Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium).

Sign in to Airflow, open the connection in the connections list, follow its form's link to the Acumatica
page, open the connection's connect page, press Connect, consent at the sandbox (its authorize page acts
for a signed-in user who consents), land on the success page; then the bundle's sync DAG reads through the
stored chain, and the Acumatica page shows its rows and its failed table. Screenshots go to
tests/ui/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from ui_server import CONN_ID, MISSING_TABLE, USERS

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT_SECONDS = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs the Debian packages chromium and chromium-driver (.ci/run installs them)",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def _visible(driver, by, value):
    from selenium.webdriver.support import expected_conditions

    return _wait(driver, expected_conditions.visibility_of_element_located((by, value)))


def _sign_in(driver, ui, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{ui.url}/")
    _visible(driver, By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(USERS[user][1])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, lambda d: d.get_cookie("_token") is not None)


def test_connect_a_tenant_from_the_ui_then_the_sync_dag_reads_through_the_chain(airflow_ui, browser):
    from selenium.webdriver.common.by import By

    _sign_in(browser, airflow_ui, "alice")

    browser.get(f"{airflow_ui.url}/connections")
    row = f"//tr[.//*[text()='{CONN_ID}']]"
    _visible(browser, By.XPATH, f"{row}//button[@aria-label='Edit Connection']").click()
    _visible(browser, By.XPATH, "//*[text()='Extra Fields']").click()
    to_page = _visible(browser, By.LINK_TEXT, "Acumatica page")
    form = browser.find_element(By.CSS_SELECTOR, "[role=dialog]").text
    assert f"{airflow_ui.url}/acumatica/oauth2redirect" in form  # the callback URL to register
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", to_page)
    browser.save_screenshot(str(SCREENSHOTS / "1-connection-form.png"))
    to_page.click()  # the form's links open in a new tab
    _wait(browser, lambda d: len(d.window_handles) == 2)
    browser.switch_to.window(browser.window_handles[-1])

    _visible(browser, By.LINK_TEXT, CONN_ID).click()
    callback = _visible(browser, By.ID, "callback-url").text
    assert callback == f"{airflow_ui.url}/acumatica/oauth2redirect"
    browser.save_screenshot(str(SCREENSHOTS / "2-connect-page.png"))

    browser.find_element(By.ID, "connect").click()
    outcome = _visible(browser, By.ID, "outcome")
    browser.save_screenshot(str(SCREENSHOTS / "3-connected.png"))
    assert browser.current_url.startswith(callback)
    assert "Connected." in outcome.text and "Company" in outcome.text and "alice" in outcome.text

    _sync_through_the_chain(airflow_ui)

    browser.get(f"{airflow_ui.url}/plugin/acumatica")  # the Acumatica page inside the Airflow UI (Browse menu)
    browser.switch_to.frame(_visible(browser, By.TAG_NAME, "iframe"))
    assert _visible(browser, By.ID, "tenant-company").text == "company"
    rows = {
        row.find_element(By.TAG_NAME, "td").text: row.text
        for row in browser.find_elements(By.XPATH, "//table[.//th[text()='Watermark']]/tbody/tr")
    }
    page = browser.find_element(By.TAG_NAME, "body").text
    browser.switch_to.default_content()
    browser.save_screenshot(str(SCREENSHOTS / "4-acumatica-status.png"))
    assert "connected by alice" in page
    assert rows["Project"].split()[1] == str(_warehouse_rows(airflow_ui, "project"))
    assert "failed at" in rows[MISSING_TABLE] and "see the task log" in rows[MISSING_TABLE]


def _sync_through_the_chain(ui) -> None:
    """The bundle's sync DAG of tenant company, run by Airflow: its Project load reads through the stored
    chain; the load of the table the endpoint lacks fails (retries 0), which the page shows."""
    ran = ui.airflow("dags", "test", "acumatica_sync__company")
    output = ran.stdout + ran.stderr
    assert "tenant 'company', table 'Project': done" in output, output[-4000:]


def _warehouse_rows(ui, table: str) -> int:
    engine = sa.create_engine(ui.warehouse_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"select count(*) from {table}")).scalar_one()
    engine.dispose()
    assert rows > 0
    return rows
