"""``mqe report``: the paper's tables and figures from runs (``mqe.experiments.report``)."""

from __future__ import annotations

from mqe.cli import flags


def register(sub) -> None:
    p = sub.add_parser("report", help="the paper's tables (Markdown, CSV, LaTeX) and figures from runs, beside the "
                                      "published numbers")
    p.add_argument("paths", nargs="+", help="run directories, sweep directories, or folders that contain them")
    p.add_argument("--out", help="where the report goes (default: <the one path>/report, else ./report)")
    p.add_argument("--no-figures", action="store_true", help="tables only (no matplotlib needed)")
    p.add_argument("--fractions", type=flags.fractions, metavar="F,F,...",
                   help="score every run at these fractions of its training (e.g. 1.0 after mqe eval --paper "
                        "--fractions 1.0) instead of its train.eval_fractions; the notes mark it")
    p.set_defaults(func=report)


def report(args) -> int:
    import os

    from mqe.experiments.report import build_report

    out = args.out or (args.paths[0] if len(args.paths) == 1 else "report")
    out = os.path.join(out, "report") if out in args.paths else out
    built = build_report(args.paths, out, figures=not args.no_figures, fractions=args.fractions)
    print(built.markdown)
    print("wrote " + ", ".join(built.files))
    return 0
