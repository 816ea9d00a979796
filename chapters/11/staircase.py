"""python -m ch11.staircase [--model DIR] [--scale 0.03125] [--repeats 3] [--out FILE]: the chapter staircase.

The same small workload (nano-vllm's, scaled: workload.py) through every chapter's engine and
nanovllm_final on this CPU, greedy so that every engine must give the same tokens: the first
engine's tokens are the reference, and a run that differs stops the staircase (a faster engine
that computes something else is not faster). Each step of the staircase is an engine's output
tokens/s (best and median of --repeats runs) and its speed-up over the first, labelled with what
that chapter added. --out writes it as a `bench` measurement (measurements/README.md): one entry
per engine, its runs' tokens/s and their median, with the machine, versions, date and command.
"""

import argparse
import os
import statistics
from fractions import Fraction
from pathlib import Path

from ch11.compare import machine, measurement, provenance, speedup, write_result
from ch11.runner import engines, run_offline
from ch11.workload import nano_vllm_workload
from course.paths import DEFAULT_MODEL_DIR


def staircase(model, scale: float, repeats: int = 3, only: list[str] | None = None, log=print) -> dict:
    from ch01.config import ModelConfig

    vocab = ModelConfig.from_pretrained(model).vocab_size
    work = nano_vllm_workload(scale, temperature=0.0, max_token_id=min(10_000, vocab - 1))
    longest = max(map(len, work.prompts)) + max(work.output_lens)
    limits = dict(max_num_seqs=len(work.prompts), max_model_len=longest)
    env, steps, reference = machine(), [], None
    for engine in only or engines():
        result = run_offline(engine, model, work, repeats=repeats, **limits)
        tokens = result.pop("token_ids")
        if reference is None:
            reference = (engine, tokens)
        check_same_tokens(reference, engine, tokens)
        result.update(workload=work.describe(), machine=env)
        result["speedup"] = speedup(steps[0], result) if steps else 1.0
        steps.append(result)
        log(f"{engine:15s} {result['tokens_per_s']['median']:9.1f} tok/s (best {result['tokens_per_s']['best']:.1f}) "
            f"x{result['speedup']:.2f}  {result['label']}")
    for step in steps:
        del step["workload"], step["machine"]  # said once, below
    return dict(model=Path(model).name, workload=work.describe(), limits=limits, repeats=repeats, machine=env,
                load_average=os.getloadavg(), tokens_equal=True, steps=steps)


def check_same_tokens(reference: tuple[str, list], engine: str, tokens: list[list[int]]) -> None:
    name, expected = reference
    for i, (got, want) in enumerate(zip(tokens, expected, strict=True)):
        if got != want:
            at = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            raise ValueError(f"{engine} computed other tokens than {name}: request {i} differs at output token {at} "
                             f"({got[at:at + 3]} against {want[at:at + 3]}); its speed would not mean anything")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ch11.staircase", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--scale", default="1/32", help="of nano-vllm's workload: 1/32 is 8 requests of 3-32 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", help="comma-separated, e.g. ch04,nanovllm_final (default: every engine)")
    parser.add_argument("--out", help="write the JSON here")
    args = parser.parse_args(argv)
    scale = float(Fraction(args.scale))
    result = staircase(args.model, scale, args.repeats, args.engines.split(",") if args.engines else None)
    result = dict(provenance("ch11.staircase", argv), **result)
    if args.out:
        write_result(args.out, as_measurement(result))
    return result


def as_measurement(result: dict) -> dict:
    """staircase()'s result (with provenance()'s command and date) as a `bench` file: per engine the
    tokens/s of each run (output tokens / its seconds, to 0.001) and their median; what is not a number of
    the table (model, workload, limits) under "setup"."""
    work = result["workload"]
    values = {}
    for step in result["steps"]:
        rates = [round(step["output_tokens"] / s, 3) for s in step["seconds"]]  # a CPU run's noise is far above 0.001 tok/s
        values[step["engine"]] = dict(tokens_per_s=rates, median=statistics.median(rates), best=max(rates),
                                      seconds=step["seconds"], fastest_s=min(step["seconds"]), slowest_s=max(step["seconds"]),
                                      output_tokens=step["output_tokens"],
                                      speedup=step["speedup"], label=step["label"])
    title = (f"the chapter staircase: every engine on nano-vllm's workload at {Fraction(work['scale']).limit_denominator(1024)} "
             f"({work['num_seqs']} requests, {work['output_tokens']} output tokens, greedy), {result['model']}, "
             f"median of {result['repeats']} runs")
    setup = {k: result[k] for k in ("model", "workload", "limits", "repeats", "load_average", "tokens_equal") if k in result}
    return measurement(title, "bench", result, result["machine"], values,
                       workload=f"the chapter staircase, {result['model']}", setup=setup,
                       readme=False)  # a teaching run on a shared CPU: the chapter's page quotes it, the README does not


if __name__ == "__main__":
    main()
