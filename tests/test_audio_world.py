"""Audio world: grammar round-trips, a disjoint split, and a ground truth that is right.

The ground truth must accept clean renders of every prompt form (>= 98 %), keep accepting them after a
trip through Tango's log-mel and a Griffin-Lim vocoder (>= 90 %), and reject renders scored against a
different prompt, random ones and near misses alike (>= 95 %). Rates are printed (pytest -s).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from mmpref.sandbox.audio import (
    DURATION,
    FORMS,
    SAMPLE_RATE,
    SOUNDS,
    EventGroup,
    Prompt,
    PromptError,
    all_prompts,
    audio_truth,
    judge,
    judge_batch,
    layout,
    log_mel,
    mel_round_trip,
    near_misses,
    parse_prompt,
    render,
    render_batch,
    split_prompts,
    truth_correct,
    truth_scores,
)

CLIPS_PER_FORM = 240
ROUND_TRIP_PER_FORM = 16


def cases_per_form(form: str, n: int, offset: int = 0) -> list[tuple[Prompt, int]]:
    """`n` (prompt, seed) pairs cycling through the form's prompts, every seed distinct."""
    prompts = all_prompts(form)
    order = np.random.default_rng(len(form) + offset).permutation(len(prompts))
    return [(prompts[order[i % len(prompts)]], 7919 * offset + 1000 + i) for i in range(n)]


# --- grammar -----------------------------------------------------------------------------------------


def test_every_sentence_round_trips_through_text():
    prompts = all_prompts()
    assert len(prompts) == len(set(prompts)) == 6 + 12 + 4 * (12 * 10)
    assert {p.form for p in prompts} == set(FORMS)
    for p in prompts:
        assert Prompt.parse(p.text) == p
        assert str(parse_prompt(p.text)) == p.text


def test_connectives_order_groups_in_time():
    after = parse_prompt("two clicks after a low beep")
    assert after.groups == (EventGroup("low beep"), EventGroup("click", 2))
    assert after.events == ("low beep", "click", "click")
    phrasings = [
        "a low beep followed by two clicks",
        "a low beep then two clicks",
        "a low beep before two clicks",
    ]
    assert all(parse_prompt(t).same_scene(after) for t in phrasings)
    assert after.canonical().text == "a low beep followed by two clicks"
    reordered = Prompt(after.groups[::-1], after.connective)
    assert reordered.text == "a low beep after two clicks" and not reordered.same_scene(after)


def test_parser_tolerates_aliases_and_rejects_nonsense():
    assert parse_prompt("An upward chirp, and then a noise burst.") == parse_prompt(
        "a rising chirp then a noise burst"
    )
    assert parse_prompt("One Descending Chirp").groups[0].sound == "falling chirp"
    assert parse_prompt("a high-pitched tone").groups[0].sound == "high beep"
    assert parse_prompt("three  clicks").groups[0].count == 3
    for bad in (
        "a beep",  # pitch missing
        "a loud click",
        "two click",
        "a clicks",
        "a click followed by a click",  # one sound in both groups
        "three clicks then a low beep",  # at most two per group in a sequence
        "a low beep while a click",  # overlap is not in the grammar
        "hello",
    ):
        with pytest.raises(PromptError):
            parse_prompt(bad)


def test_near_misses_differ_in_one_attribute():
    prompt = parse_prompt("a low beep followed by two clicks")
    misses = near_misses(prompt)
    assert prompt not in misses and all(not m.same_scene(prompt) for m in misses)
    assert parse_prompt("two clicks followed by a low beep") in misses  # reordered
    assert parse_prompt("a low beep followed by a click") in misses  # count
    assert parse_prompt("a high beep followed by two clicks") in misses  # sound
    assert all(len(m.groups) == 2 for m in misses)


def test_split_is_deterministic_disjoint_and_covers_every_form():
    split = split_prompts(seed=0)
    assert split == split_prompts(seed=0) and split != split_prompts(seed=1)
    train_scenes = {p.canonical() for p in split.train}
    held_scenes = {p.canonical() for p in split.heldout}
    assert not train_scenes & held_scenes
    assert set(split.train) | set(split.heldout) == set(all_prompts())
    for form in FORMS:
        assert any(p.form == form for p in split.heldout) and any(p.form == form for p in split.train)
    # Held-out combinations are unseen as wholes, but every sound and every count is seen in training.
    sounds = {g.sound for p in split.train for g in p.groups}
    counts = {g.count for p in split.train for g in p.groups}
    assert all(g.sound in sounds and g.count in counts for p in split.heldout for g in p.groups)
    assert split.texts("heldout")[0] == split.heldout[0].text


# --- renderer ----------------------------------------------------------------------------------------


def test_renders_are_deterministic_sized_and_ordered():
    a, b = (
        render("a low beep followed by two clicks", seed=3),
        render("a low beep followed by two clicks", seed=3),
    )
    assert a.dtype == np.float32 and a.shape == (round(DURATION * SAMPLE_RATE),) == (20480,)
    assert np.array_equal(a, b) and not np.array_equal(a, render("a low beep followed by two clicks", seed=4))
    assert np.abs(a).max() <= 1.0
    assert log_mel(a).shape == (128, 64)  # 128 mel frames at hop 160
    events = layout("two clicks after a low beep", seed=5)
    assert [e.sound for e in events] == ["low beep", "click", "click"]
    assert all(e2.onset - e1.offset >= 0.1 - 1e-9 for e1, e2 in zip(events, events[1:]))
    assert render("a click", seed=0, duration=2.56).shape == (40960,)
    assert render_batch(["a click", "two noise bursts"], [0, 1]).shape == (2, 20480)
    with pytest.raises(ValueError):
        render("two rising chirps followed by two noise bursts", duration=0.5)


def test_longest_prompts_fit_every_seed():
    longest = [p for p in all_prompts("sequence") if sum(g.count for g in p.groups) == 4]
    for i, p in enumerate(longest[:40]):
        events = layout(p, seed=i)
        assert events[-1].offset <= DURATION - 0.04 + 1e-9


# --- ground truth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_truth_accepts_clean_renders_of_every_form(form):
    cases = cases_per_form(form, CLIPS_PER_FORM)
    clips = render_batch([p for p, _ in cases], [s for _, s in cases])
    verdicts = judge_batch(clips, [p for p, _ in cases])
    accuracy = np.mean([v.correct for v in verdicts])
    print(f"\nclean {form}: {accuracy:.3f} correct over {len(cases)} clips")
    assert accuracy >= 0.98
    assert np.mean([v.score for v in verdicts]) >= 0.99


def test_truth_survives_a_mel_round_trip():
    cases = [c for form in FORMS for c in cases_per_form(form, ROUND_TRIP_PER_FORM, offset=1)]
    clips = render_batch([p for p, _ in cases], [s for _, s in cases])
    clips = 0.5 * clips / np.abs(clips).max(axis=1, keepdims=True)  # Tango's peak-0.5 normalisation
    vocoded = mel_round_trip(clips, n_iter=32)
    assert vocoded.shape == clips.shape and not np.allclose(vocoded, clips, atol=1e-2)
    correct = truth_correct(vocoded, [p for p, _ in cases])
    for form in FORMS:
        rate = correct[[p.form == form for p, _ in cases]].mean()
        print(f"\nmel round trip {form}: {rate:.3f} correct")
        assert rate >= 0.90
    print(f"mel round trip all: {correct.mean():.3f} over {len(cases)} clips")


def test_truth_rejects_mismatched_prompts():
    prompts = all_prompts()
    rng = np.random.default_rng(0)
    cases = [(prompts[i], 50_000 + k) for k, i in enumerate(rng.choice(len(prompts), 300, replace=False))]
    clips = render_batch([p for p, _ in cases], [s for _, s in cases])
    others = []
    for p, _ in cases:
        other = prompts[rng.integers(len(prompts))]
        while other.same_scene(p):
            other = prompts[rng.integers(len(prompts))]
        others.append(other)
    random_rejection = 1.0 - truth_correct(clips, others).mean()
    misses = [near_misses(p) for p, _ in cases]
    hard = [m[rng.integers(len(m))] for m in misses]
    near_rejection = 1.0 - truth_correct(clips, hard).mean()
    print(
        f"\nmismatch rejection: random {random_rejection:.3f}, near misses {near_rejection:.3f} over {len(cases)}"
    )
    assert random_rejection >= 0.95 and near_rejection >= 0.95
    assert truth_scores(clips, others).mean() < truth_scores(clips, [p for p, _ in cases]).mean()


def test_graded_score_counts_the_checks_passed():
    clip = render("a low beep followed by two clicks", seed=11)
    assert judge(clip, "a low beep followed by two clicks").score == 1.0
    reordered = judge(clip, "two clicks followed by a low beep")  # 6 checks: only the order fails
    assert (
        not reordered.correct and reordered.score == pytest.approx(5 / 6) and reordered.checks["order"] == 0.0
    )
    one_click = judge(clip, "a low beep followed by a click")
    assert one_click.score == pytest.approx(5 / 6) and one_click.checks["1:click count"] == 0.0
    beep_only = judge(clip, "a low beep")  # present, count; the clicks are extra
    assert beep_only.score == pytest.approx(2 / 3) and beep_only.checks["nothing else"] == 0.0
    assert judge(clip, "three high beeps").score == pytest.approx(0.0)
    assert [e.sound for e in judge(clip, "a click").events] == ["low beep", "click", "click"]


def test_truth_ignores_gain_and_finds_nothing_in_silence():
    cases = [(p, i) for i, p in enumerate(all_prompts()[::25])]
    clips = render_batch([p for p, _ in cases], [s for _, s in cases])
    prompts = [p for p, _ in cases]
    for gain in (0.05, 1.0 / np.abs(clips).max()):
        assert truth_correct(clips * gain, prompts).all()
    silent = judge(np.zeros(20480, np.float32), "a click")
    assert silent.events == () and silent.score == pytest.approx(1 / 3)  # only "nothing else" passes
    hiss = judge(np.random.default_rng(0).normal(0, 0.01, 20480), "a noise burst")
    assert hiss.events == ()


def test_wav_files_keep_the_score(tmp_path):
    from mmpref.reward_models.audio import resample

    prompts = ["a rising chirp then a noise burst", "three clicks", "two high beeps after a falling chirp"]
    clips = render_batch(prompts, [1, 2, 3])
    paths = []
    for i, clip in enumerate(clips):
        paths.append(tmp_path / f"{i}.wav")
        soundfile.write(paths[i], clip, SAMPLE_RATE, subtype="PCM_16")
    read = [soundfile.read(p, dtype="float32")[0] for p in paths]
    assert np.array_equal(truth_scores(read, prompts), truth_scores(clips, prompts))
    assert np.all(truth_scores(read, prompts) == 1.0)
    # Clips at another rate, as (samples, rate) or an Audio cell, are resampled to 16 kHz first.
    at_22k = [(resample(x, SAMPLE_RATE, 22050), 22050) for x in read]
    assert truth_correct(at_22k, prompts).all()
    assert truth_correct([{"array": x, "sampling_rate": r} for x, r in at_22k], prompts).all()
    assert np.array_equal(audio_truth(read, prompts), truth_scores(read, prompts))
    with pytest.raises(ValueError):
        truth_scores(read, prompts[:2])


def test_log_mel_has_tango_shape_and_inverts_to_the_same_pitch():
    from mmpref.sandbox.audio.mel import LOG_FLOOR, mel_filters

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    mel = log_mel(tone)
    assert mel.shape == (100, 64) and mel.dtype == np.float32
    band = int(mel.mean(axis=0).argmax())
    centre = mel_filters()[:, band].argmax() * SAMPLE_RATE / 1024
    assert abs(centre - 1000.0) < 60.0  # the loudest band is the one around 1 kHz
    assert log_mel(np.zeros(SAMPLE_RATE)).max() == pytest.approx(np.log(LOG_FLOOR))
    assert log_mel(np.stack([tone, tone])).shape == (2, 100, 64)
    back = mel_round_trip(tone)
    spectrum = np.abs(np.fft.rfft(back))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(back) - 1000.0) < 40.0


def test_vocabulary_is_what_the_docs_say():
    assert SOUNDS == ("low beep", "high beep", "rising chirp", "falling chirp", "noise burst", "click")
    assert audio_truth.sample_rate == SAMPLE_RATE == 16000
