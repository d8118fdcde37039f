"""A prepared greeting is shaped as a live answer is, and refused, with its reason, when a caller should not
hear it; the next ringing then says the template."""

from __future__ import annotations

import pytest

from callmemory.memory.unfit import Unfit
from callmemory.summaries.greeting import Prepared, prepared_greeting

CALLER_SAID = ("Hi, this is Maria Lopez. My order 48213 never arrived.",)
CAP = 300


def prepared(written: str, name: str | None = "Maria Lopez") -> Prepared:
    return prepared_greeting(written, caller_said=CALLER_SAID, name=name, max_chars=CAP)


def test_a_fit_greeting_is_kept_as_the_model_wrote_it() -> None:
    assert prepared("Welcome back, Maria! Did your order 48213 arrive in the end?") == Prepared(
        "Welcome back, Maria! Did your order 48213 arrive in the end?"
    )


def test_markdown_and_emoji_are_taken_out_as_from_a_live_answer() -> None:
    assert prepared("**Welcome back, Maria!** 😊") == Prepared("Welcome back, Maria!")


def test_a_greeting_whose_only_sentence_has_a_placeholder_is_refused_as_unsayable() -> None:
    # speakable() leaves out a sentence with a blank to fill in, as from a live answer: none is left.
    assert prepared("**Welcome back, [name]!** 😊") == Prepared("", Unfit.UNSAYABLE)


@pytest.mark.parametrize(
    "written",
    [
        "Welcome back! Caller: my order never arrived.",
        "Welcome back! Assistant: I will check it.",
        "Welcome back! User: where is my parcel?",
        "Welcome back! Bot: how can I help?",
        "Welcome back! The caller said your parcel is late.",
    ],
)
def test_a_role_label_or_retold_speech_is_refused(written: str) -> None:
    assert prepared(written) == Prepared("", Unfit.ROLE_LABEL)


@pytest.mark.parametrize(
    "written",
    [
        "Welcome back! Here is profileListingImg_0f5c9d7e.png for you.",
        "Welcome back! Your invoice is invoice.pdf now.",
        "Welcome back! See https://example.org for your order.",
        "Welcome back! It is saved in /var/orders/ today.",
        "Welcome back! Your case is 0f5c9d7e3a.",
        "Welcome back! Your case is orderTrackingStatus now.",
    ],
)
def test_a_file_name_path_url_or_machine_id_is_refused(written: str) -> None:
    assert prepared(written) == Prepared("", Unfit.FILE_NAME)


def test_order_numbers_and_serials_are_not_taken_for_ids() -> None:
    written = "Welcome back! Is the dishwasher DW-7731 from order 48213 fixed?"

    assert prepared(written) == Prepared(written)


def test_six_of_the_callers_words_in_a_row_are_refused_as_a_transcript_echo() -> None:
    # "my order 48213 never arrived" is five; with "Lopez" before it, six in a row of what the caller said.
    assert prepared("Welcome back, Maria Lopez. My order 48213 never arrived?") == Prepared(
        "", Unfit.TRANSCRIPT_ECHO
    )


def test_five_of_the_callers_words_in_a_row_are_a_reference_and_kept() -> None:
    written = "Welcome back! So my order 48213 never arrived?"

    assert prepared(written) == Prepared(written)


@pytest.mark.parametrize(
    "written",
    [
        "Welcome back! I'm sorry for any misunderstanding.",
        "Welcome back! I apologize for the confusion.",
        "Welcome back! My apologies, I could not find it.",
        "Welcome back! Sorry, I couldn't help but mention it.",
    ],
)
def test_the_models_own_apology_is_refused(written: str) -> None:
    assert prepared(written) == Prepared("", Unfit.APOLOGY)


def test_the_business_apologising_to_the_caller_is_kept() -> None:
    written = "Welcome back, Maria! We're sorry your parcel was late; has it arrived now?"

    assert prepared(written) == Prepared(written)


@pytest.mark.parametrize(
    "written",
    [
        "Here is the greeting for the next call.",
        "Based on what was said, the order is late.",
        "Did your order ever arrive?",
    ],
)
def test_a_greeting_that_opens_neither_greeting_nor_naming_the_caller_is_refused(written: str) -> None:
    assert prepared(written) == Prepared("", Unfit.NOT_A_GREETING)


def test_opening_with_the_callers_name_is_greeting_them() -> None:
    assert prepared("Maria, did your order ever arrive?") == Prepared("Maria, did your order ever arrive?")


def test_without_a_name_in_the_profile_a_greeting_word_is_needed() -> None:
    assert prepared("Maria, did your order ever arrive?", name=None) == Prepared("", Unfit.NOT_A_GREETING)


def test_three_sentences_are_refused() -> None:
    written = "Welcome back! Did your order arrive? We can look into it now."

    assert prepared(written) == Prepared("", Unfit.TOO_MANY_SENTENCES)


def test_a_greeting_longer_than_the_cap_is_refused_not_cut() -> None:
    written = "Welcome back, Maria, " + "and thank you for your patience, " * 9 + "how are you?"
    assert len(written) > CAP

    assert prepared(written) == Prepared("", Unfit.TOO_LONG)


def test_what_a_small_model_wrote_after_two_calls_is_refused() -> None:
    # SmolLM2-135M on llama.cpp's server, default settings: every rule but the length is broken at once;
    # the first found is the one counted.
    written = (
        "I'm sorry for any misunderstanding. The caller said: Hi, this is Maria Lopez. My order 48213 never "
        "arrived. Assistant: Sorry, I couldn't help but mention it"
    )

    assert prepared(written) == Prepared("", Unfit.ROLE_LABEL)
