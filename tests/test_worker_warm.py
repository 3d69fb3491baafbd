"""Extraction workers start warm: forked by a fork server that has loaded the parsers and
compiled the extractor's vocabularies (`monitor.pipeline.warm`)."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from monitor.pipeline.warm import warm_document
from monitor.pipeline.worker import extract_printed_alike
from monitor.pipeline.workers import (
    EXIT_MODULE,
    WARM_MODULE,
    start_workers_early,
    worker_context,
)
from sources import SOURCE_KINDS

needs_forkserver = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)


def _worker_state(_: object) -> tuple[bool, bool, int]:
    """In a worker: whether the HTML parser and the warm module were loaded before any
    document, and how many vocabularies were compiled."""
    from diffing.extract import vocabulary

    return (
        "trafilatura" in sys.modules,
        WARM_MODULE in sys.modules,
        len(vocabulary._COMPILED),
    )


@needs_forkserver
def test_workers_come_warm_from_the_fork_server() -> None:
    start_workers_early()
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        parser_loaded, warmed, vocabularies = pool.submit(_worker_state, None).result(timeout=120)
    assert parser_loaded
    assert warmed
    assert vocabularies >= 3  # drugs, diagnoses, prescriber specialties at least


@needs_forkserver
def test_worker_context_is_the_fork_server_with_the_warm_module() -> None:
    context = worker_context()
    assert context.get_start_method() == "forkserver"
    start_workers_early()
    start_workers_early()  # a second call finds the server running
    from multiprocessing import forkserver

    assert forkserver._forkserver._forkserver_pid is not None  # type: ignore[attr-defined]
    assert forkserver._forkserver._preload_modules == [WARM_MODULE, EXIT_MODULE]  # type: ignore[attr-defined]


def test_the_warm_page_walks_the_extractor() -> None:
    """The warm-up page must keep reaching the parts it is there to warm: if the extractor
    stopped finding its criteria, the warm-up would silently warm nothing."""
    criteria, text = extract_printed_alike(SOURCE_KINDS["payer_policies"].extract, warm_document())
    assert [d.name for d in criteria.drugs] == ["dupilumab"]
    assert criteria.step_therapy
    assert criteria.approval_periods
    assert criteria.criteria_tree is not None
    assert any(code.code == "J3590" for code in criteria.codes)
    assert text is not None and "dermatologist" in text
