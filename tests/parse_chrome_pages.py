"""Policy pages wrapped in site chrome, written here in the style of Blue plans' policy sites.

Two variants of the same page differ only in chrome (menu wording, a footer link, a cookie
banner, how many times the "open in full context" link repeats), so a parser that keeps only
the policy must give equal documents for both. Used by the parse tests and the HTML
main-content evaluation (`tests/test_parse_html_chrome.py`).
"""

from __future__ import annotations

CONTENT_SNIPPETS = (
    "Cell-free tumor DNA assays are considered medically necessary",
    "the patient has advanced non-small cell lung cancer",
    "tissue is insufficient for molecular profiling",
    "Serial testing to monitor response is considered investigational",
    "Use of a plasma assay after surgery has not been shown",
    "81445",
    "Targeted genomic sequence analysis panel, solid organ neoplasm",
    "0242U",
    "Policy reviewed; no change to criteria",
)
HEADINGS = ("Description", "Policy", "Medical Necessity", "Billing and Coding", "Policy History")
CHROME_SNIPPETS = (
    "Register for",
    "Find a Doctor",
    "We use cookies",
    "Click here to see this page in full context",
    "Newsroom",
    "Log In",
    "Privacy Policy",
    "Skip to main content",
)


def chrome_page(variant: int) -> str:
    """Variant 0 and 1: the same policy, different chrome."""
    register = "Register for Blue Access" if variant == 0 else "Register for the member portal"
    footer_extra = "<li><a href='/covid'>COVID-19</a></li>" if variant == 0 else ""
    repeats = 7 if variant == 0 else 9
    full_context = (
        "<div class='mp-link'><span>Medical Policy Manual</span> "
        "<a href='/mp/full'>Click here to see this page in full context</a></div>\n"
    ) * repeats
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Cell-Free Tumor DNA Testing | Providers | Blue Plan of Example</title></head>
<body>
<a href="#content" class="visually-hidden-focusable">Skip to main content</a>
<div class="site-top">
  <div class="utility"><ul><li><a href="/shop">Shop Plans</a></li><li><a href="/find">Find a
  Doctor</a></li><li><a href="/members">Members</a></li><li><a href="/providers">Providers</a>
  </li></ul></div>
  <div class="login-panel"><p>I am a member</p><p><a href="/login">Log In</a></p>
  <p><a href="/register">{register}</a></p><p>Need help? Learn how to log in.</p></div>
</div>
<div id="onetrust-banner-sdk"><p>We use cookies to give you the best experience on our website.
  By continuing you agree to our use of cookies.</p><a href="#">Accept all</a></div>
{full_context}
<div id="content" class="page-body">
<h1>Cell-Free Tumor DNA Testing</h1>
<p>Commercial Medical Policy</p>
<p>Origination: 03/2020 Last Review: 10/2025</p>
<h2>Description</h2>
<p>Cell-free tumor DNA is shed into the blood by tumor cells; a plasma assay can detect
somatic variants without a tissue biopsy.</p>
<h2>Policy</h2>
<h3>Medical Necessity</h3>
<p>Cell-free tumor DNA assays are considered medically necessary when ALL of the following
are met:</p>
<ol><li>the patient has advanced non-small cell lung cancer; AND</li>
<li>tissue is insufficient for molecular profiling or a biopsy is contraindicated.</li></ol>
<p>Serial testing to monitor response is considered investigational.</p>
<p>Use of a plasma assay after surgery has not been shown to improve outcomes.</p>
<h2>Billing and Coding</h2>
<table class="codes"><tr><th>Code</th><th>Description</th></tr>
<tr><td>81445</td><td>Targeted genomic sequence analysis panel, solid organ neoplasm</td></tr>
<tr><td>0242U</td><td>Targeted genomic sequence analysis panel, cell-free circulating DNA</td></tr>
</table>
<h2>Policy History</h2>
<p>10/2025 Policy reviewed; no change to criteria.</p>
</div>
<div class="global-footer"><ul><li><a href="/about">About Us</a></li>
<li><a href="/news">Newsroom</a></li>{footer_extra}<li><a href="/privacy">Privacy Policy</a></li>
<li><a href="/terms">Website User Agreement</a></li></ul>
<p>&copy; 2026 Blue Plan of Example. An independent licensee of the Blue Cross and Blue Shield
Association.</p></div>
</body></html>
"""
