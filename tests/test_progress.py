"""The console's live view (``orchestrator.progress``): known states -> exact lines, the ETA's arithmetic,
plain lines without ANSI codes, worker lines tagged with their trial and never deduplicated."""

from __future__ import annotations

import io
import logging

import pytest

from orchestrator.progress import (
    GridState,
    ProgressView,
    RunningTrial,
    WorkerLines,
    apply_report,
    duration,
    eta_seconds,
    position_text,
    progress_of,
    quiet_ray,
    status_line,
    view_lines,
)
from orchestrator.running import RunningTrials

T0 = 1_800_000_000.0     # 2027-01-15T08:00:00Z


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _state() -> GridState:
    state = GridState(["a", "b", "c", "d", "e"], T0, weights={"a": 10.0, "b": 10.0, "c": 20.0, "d": 10.0})
    state.done = {"a"}
    state.finished = [("a", 30.0)]                  # took 3x its plan
    state.running = {"b": RunningTrial("b", T0 + 30, phase="finetuning", step=4, steps=13, epoch=2, epochs=2,
                                       steps_per_s=2.0)}
    state.most_at_once = 2
    return state


def test_durations():
    assert [duration(s) for s in (0, 45.4, 185, 7620, 97200)] == ["0s", "45s", "3m05s", "2h07m", "1d03h"]


def test_eta_scales_the_plan_by_the_finished_trials_and_divides_by_the_trials_at_once():
    state = _state()
    # scale 3; pending c (20) and d (10) and e (no plan: the mean weight 12.5): (60 + 30 + 37.5);
    # b: 30 planned, 10 s in -> 20 left; all over 2 at once
    assert eta_seconds(state, T0 + 40) == pytest.approx((60 + 30 + 37.5 + 20) / 2)


def test_no_eta_before_a_trial_of_this_run_finished():
    state = _state()
    state.finished = []
    assert eta_seconds(state, T0 + 40) is None


def test_eta_without_a_plan_weighs_trials_alike():
    state = GridState(["a", "b", "c"], T0, done={"a"}, finished=[("a", 60.0)], most_at_once=1)
    assert eta_seconds(state, T0 + 60) == pytest.approx(120.0)


def test_a_running_trial_past_its_estimate_adds_nothing():
    state = GridState(["a", "b"], T0, done={"a"}, finished=[("a", 60.0)], most_at_once=1,
                      running={"b": RunningTrial("b", T0)})
    assert eta_seconds(state, T0 + 500) == 0.0


def test_the_terminal_block():
    assert view_lines(_state(), T0 + 40) == [
        "alignfreeze: 1/5 done, 1 running, 3 pending, 0 failed; elapsed 40s, ETA 1m14s",
        "  b  fine-tuning epoch 2/2 step 4/13, 2.0 steps/s (10s)"]


def test_the_plain_status_line():
    assert status_line(_state(), T0 + 40) == (
        "2027-01-15T08:00:40Z 1/5 done, 1 running, 3 pending, 0 failed; elapsed 40s, ETA 1m14s; "
        "running: b fine-tuning epoch 2/2 step 4/13, 2.0 steps/s")


def test_positions_in_words():
    assert position_text(RunningTrial("x", T0)) == "starting"
    assert position_text(RunningTrial("x", T0, phase="realigning", step=12, steps=26)) == "realigning step 12/26"
    assert position_text(RunningTrial("x", T0, phase="evaluating")) == "evaluating"


def test_progress_reports_and_checkpoints_give_the_position_and_the_rate():
    trial = RunningTrial("x", T0)
    report = {"progress_phase": "finetuning", "progress_step": 2, "progress_steps": 13,
              "progress_epoch": 1, "progress_epochs": 2}
    apply_report(trial, progress_of(report), T0 + 1)
    apply_report(trial, progress_of({**report, "progress_step": 8}), T0 + 4)
    assert position_text(trial) == "fine-tuning epoch 1/2 step 8/13, 2.0 steps/s"
    # the epoch's checkpoint knows no totals: they stay, and its last step; the rate runs on over epochs
    apply_report(trial, progress_of({"phase": "finetune", "epoch": 0, "step": 0}), T0 + 6)
    assert position_text(trial) == "fine-tuning epoch 1/2 step 13/13, 2.2 steps/s"   # (13 - 2) / 5 s
    apply_report(trial, progress_of({**report, "progress_step": 3, "progress_epoch": 2}), T0 + 8)
    assert position_text(trial) == "fine-tuning epoch 2/2 step 3/13, 2.0 steps/s"    # (16 - 2) / 7 s
    # a new phase starts a new rate
    apply_report(trial, progress_of({"progress_phase": "evaluating"}), T0 + 9)
    assert position_text(trial) == "evaluating"
    assert progress_of({"phase": "done"}) is None
    assert progress_of({"phase": "realigning", "realign_step": 5, "step": 5})["step"] == 5


def _events(view: ProgressView, clock: Clock) -> None:
    view.started("a")
    view.started("b")
    clock.now += 5
    view.reported("a", {"pid": 11, "progress_phase": "realigning", "progress_step": 3, "progress_steps": 26})
    clock.now += 31
    view.tick()
    view.finished("a", "target average accuracy 0.2709 (36.0 s)")
    view.ended("a")
    view.failed("b", "CUDA out of memory")
    view.ended("b")
    view.close()


def test_plain_lines_carry_timestamps_and_no_ansi_codes():
    stream, clock = io.StringIO(), Clock()
    view = ProgressView(["a", "b", "c"], weights={"a": 1.0, "b": 1.0, "c": 1.0}, stream=stream, live=False,
                        clock=clock)
    _events(view, clock)
    text = stream.getvalue()
    assert "\x1b" not in text
    assert text.splitlines() == [
        ("2027-01-15T08:00:36Z 0/3 done, 2 running, 1 pending, 0 failed; elapsed 36s, ETA after the first trial; "
         "running: a realigning step 3/26; b starting"),
        "2027-01-15T08:00:36Z done a: target average accuracy 0.2709 (36.0 s)",
        "2027-01-15T08:00:36Z FAILED b: CUDA out of memory",
        "2027-01-15T08:00:36Z 1/3 done, 0 running, 1 pending, 1 failed; elapsed 36s, ETA 36s"]


def test_the_terminal_block_is_redrawn_in_place():
    stream, clock = io.StringIO(), Clock()
    view = ProgressView(["a", "b"], stream=stream, live=True, clock=clock)
    view.started("a")
    view.say("[a] fine-tuning pos for 2 epochs x 13 steps")
    text = stream.getvalue()
    # the block (2 lines) is erased, the line printed, the block drawn again below it
    assert text.endswith("\x1b[2F\x1b[J[a] fine-tuning pos for 2 epochs x 13 steps\n"
                         "alignfreeze: 0/2 done, 1 running, 1 pending, 0 failed; elapsed 0s, "
                         "ETA after the first trial\n  a  starting (0s)\n")


def test_a_trial_that_ends_without_result_or_error_counts_as_failed():
    view = ProgressView(["a"], stream=io.StringIO(), live=False)
    view.started("a")
    view.ended("a")
    assert view.state.failed == {"a"} and not view.state.running


def test_worker_lines_carry_their_trial_and_ray_chatter_is_dropped():
    view = ProgressView(["tiny_s1", "tiny_s2"], stream=io.StringIO(), live=False)
    view.reported("tiny_s2", {"pid": 32161})
    lines = WorkerLines(view).lines({"pid": 32161, "lines": [
        "\x1b[32mepoch 2/2: train loss 1.3338\x1b[0m",
        "Checkpoint successfully created at: Checkpoint(filesystem=local, path=/x)",
        "[tiny_s1] fine-tuning pos for 2 epochs x 13 steps",
        "epoch 2/2: train loss 1.3338"]})
    # the same line twice stays twice: nothing is deduplicated
    assert lines == ["[tiny_s2] epoch 2/2: train loss 1.3338", "[tiny_s1] fine-tuning pos for 2 epochs x 13 steps",
                     "[tiny_s2] epoch 2/2: train loss 1.3338"]
    assert WorkerLines(view).lines({"pid": 99, "lines": ["hello"]}) == ["[worker pid 99] hello"]
    assert WorkerLines(view).lines({"pid": "raylet", "lines": ["killed"]}) == ["[ray raylet] killed"]


def test_quiet_ray_turns_deduplication_and_tunes_output_off_and_keeps_what_the_user_set():
    environ = {"RAY_AIR_NEW_OUTPUT": "1"}
    quiet_ray(0, environ)
    assert environ == {"RAY_AIR_NEW_OUTPUT": "1", "RAY_DEDUP_LOGS": "0"}
    assert logging.getLogger("ray._private.authentication").level == logging.ERROR
    environ = {}
    quiet_ray(0, environ)
    assert environ == {"RAY_AIR_NEW_OUTPUT": "0", "RAY_DEDUP_LOGS": "0"}
    environ = {}
    quiet_ray(1, environ)
    assert environ == {"RAY_DEDUP_LOGS": "0"}


def test_running_trials_feed_the_view(tmp_path):
    stream, clock = io.StringIO(), Clock()
    view = ProgressView(["a"], stream=stream, live=False, clock=clock)
    running = RunningTrials(tmp_path, view=view)
    running.started("a")
    running.reported("a", {"pid": 7, "progress_phase": "finetuning", "progress_step": 1, "progress_steps": 4,
                           "progress_epoch": 1, "progress_epochs": 1})
    assert position_text(view.state.running["a"]) == "fine-tuning epoch 1/1 step 1/4"
    running.failed("a", "node lost")
    assert view.state.running["a"].phase == "retrying"
    view.finished("a", "ok")
    running.ended("a")
    running.close()
    assert view.state.done == {"a"} and not view.state.failed
    assert stream.getvalue().splitlines()[-1].endswith("1/1 done, 0 running, 0 pending, 0 failed; elapsed 0s, ETA 0s")


def test_the_view_survives_tunes_pickling_of_its_callbacks():
    import pickle

    view = ProgressView(["a"], stream=io.StringIO(), live=False)
    view.started("a")
    copy = pickle.loads(pickle.dumps(view))
    assert list(copy.state.running) == ["a"]


def test_status_shows_where_a_running_trial_stands(tmp_path):
    from orchestrator.running import read_running
    from orchestrator.status import _running_text

    running = RunningTrials(tmp_path)
    running.started("a")
    running.reported("a", {"pid": 7, "hostname": "node1", "progress_phase": "realigning", "progress_step": 300,
                           "progress_steps": 1000})
    running.beat()
    info = read_running(tmp_path)["trials"]["a"]
    assert info["position"]["step"] == 300
    assert "on node1 (pid 7), realigning step 300/1000 at " in _running_text({"trial_id": "a", "running": info})


def test_verbose_keeps_rays_own_worker_lines():
    view = ProgressView(["a"], stream=io.StringIO(), live=False)
    line = "Checkpoint successfully created at: Checkpoint(filesystem=local, path=/x)"
    assert WorkerLines(view, chatter=True).lines({"pid": 5, "lines": [line]}) == [f"[worker pid 5] {line}"]


@pytest.mark.slow
def test_the_demo_plans_a_weight_for_every_trial_and_realigned_trials_weigh_more():
    from orchestrator.experiment import load_experiment_file
    from orchestrator.progress import planned_seconds
    from search_spaces import preset_path

    experiment = load_experiment_file(preset_path("demo"))
    weights = planned_seconds(experiment)
    assert set(weights) == {t.trial_id for t in experiment.trials}
    baseline = [w for t, w in weights.items() if "_baseline_" in t]
    realigned = [w for t, w in weights.items() if "_baseline_" not in t]
    assert min(realigned) > max(baseline) > 0
