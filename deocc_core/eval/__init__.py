"""Evaluation: metrics, baselines, tables per region / class, the markdown + HTML report."""

from deocc_core.eval.baselines import BASELINES, run_baseline
from deocc_core.eval.evaluate import EvalConfig, EvalResult, evaluate
from deocc_core.eval.metrics import ImageScores, masked_psnr, score
from deocc_core.eval.report import PAPER_TABLE1, html_report, markdown_report

__all__ = [
    "ImageScores",
    "score",
    "masked_psnr",
    "BASELINES",
    "run_baseline",
    "EvalConfig",
    "EvalResult",
    "evaluate",
    "PAPER_TABLE1",
    "markdown_report",
    "html_report",
]
