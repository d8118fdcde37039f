"""The rules that make an LLM's answer sayable, one per test: what a voice would read out, and why."""

from __future__ import annotations

import pytest

from callmemory.conversation.speech import (
    CAPPED,
    CUT_AT_SENTENCE,
    EMOJI,
    LIST,
    MARKDOWN,
    NEWLINES,
    PLACEHOLDER,
    SALUTATION,
    SIGNOFF,
    Spoken,
    speakable,
)

CAP = 300


def spoken(text: str, *, cut_off: bool = False, max_chars: int = CAP) -> Spoken:
    return speakable(text, cut_off=cut_off, max_chars=max_chars)


def test_a_short_plain_answer_is_spoken_as_written() -> None:
    assert spoken("  Sure, I can help with that. What is your order number?\n") == Spoken(
        "Sure, I can help with that. What is your order number?"
    )


def test_bold_italics_and_code_are_read_as_plain_words() -> None:
    assert spoken("**Sure!** Press _Reset_, then type `yes`.") == Spoken(
        "Sure! Press Reset, then type yes.", frozenset({MARKDOWN})
    )


def test_a_link_is_read_as_its_text_and_not_its_address() -> None:
    assert spoken("See [our help page](https://example.com/help).") == Spoken(
        "See our help page.", frozenset({MARKDOWN})
    )


def test_a_header_is_read_as_a_sentence_of_its_own() -> None:
    assert spoken("## Your order\nIt left the warehouse today.") == Spoken(
        "Your order. It left the warehouse today.", frozenset({MARKDOWN, NEWLINES})
    )


def test_a_code_block_is_left_out() -> None:
    assert spoken("Run this:\n```\nreset --all\n```\nThen restart it.") == Spoken(
        "Run this. Then restart it.", frozenset({MARKDOWN, NEWLINES})
    )


def test_bullet_items_are_read_as_sentences() -> None:
    assert spoken("You can:\n- pay by card\n* pay by bank transfer") == Spoken(
        "You can. pay by card. pay by bank transfer", frozenset({LIST, NEWLINES})
    )


def test_numbered_items_are_read_without_their_numbers() -> None:
    assert spoken("1. Unplug the router.\n2) Wait ten seconds\n3. Plug it back in.") == Spoken(
        "Unplug the router. Wait ten seconds. Plug it back in.", frozenset({LIST, NEWLINES})
    )


def test_lines_are_read_as_one_run_of_sentences() -> None:
    assert spoken("Your parcel left today.\n\nIt arrives on Friday") == Spoken(
        "Your parcel left today. It arrives on Friday", frozenset({NEWLINES})
    )


def test_a_line_that_ends_without_a_stop_gets_one() -> None:
    assert spoken("Good news\nYour refund was approved.") == Spoken(
        "Good news. Your refund was approved.", frozenset({NEWLINES})
    )


def test_a_sentence_wrapped_over_two_lines_is_read_as_one() -> None:
    assert spoken("I can book the engineer\nfor Tuesday morning.") == Spoken(
        "I can book the engineer for Tuesday morning.", frozenset({NEWLINES})
    )


def test_emoji_are_left_out() -> None:
    assert spoken("Happy to help 😊!") == Spoken("Happy to help!", frozenset({EMOJI}))


def test_a_letters_salutation_is_left_out() -> None:
    assert spoken("Dear Maria,\nYour order shipped yesterday.") == Spoken(
        "Your order shipped yesterday.", frozenset({SALUTATION})
    )


def test_a_sign_off_with_the_name_under_it_is_left_out() -> None:
    assert spoken("Your order shipped yesterday.\n\nBest regards,\nAlex\nAcme Support") == Spoken(
        "Your order shipped yesterday.", frozenset({SIGNOFF})
    )


def test_a_sign_off_run_on_after_the_last_sentence_is_left_out() -> None:
    assert spoken("I hope this helps. Sincerely, Alex") == Spoken("I hope this helps.", frozenset({SIGNOFF}))


def test_thanks_with_a_name_under_it_is_a_sign_off() -> None:
    assert spoken("It is done.\nThanks,\nAlex") == Spoken("It is done.", frozenset({SIGNOFF}))


def test_thanks_on_its_own_is_said() -> None:
    assert spoken("It is done. Thanks!\nHave a nice day.").text == "It is done. Thanks! Have a nice day."


@pytest.mark.parametrize(
    "sentence",
    ["With regards to your order, it shipped.", "Best wishes for your move!", "Yours is the blue one."],
)
def test_a_sentence_that_only_starts_like_a_closing_is_said(sentence: str) -> None:
    assert spoken(sentence) == Spoken(sentence)


@pytest.mark.parametrize("blank", ["[address]", "[Your Name]", "{name}", "{{name}}", "<name>", "XXX", "____"])
def test_a_sentence_with_a_template_placeholder_is_left_out(blank: str) -> None:
    assert spoken(f"I sent it to {blank} today. Anything else?") == Spoken(
        "Anything else?", frozenset({PLACEHOLDER})
    )


def test_an_answer_cut_at_the_token_limit_ends_at_its_last_complete_sentence() -> None:
    assert spoken("Sure. I will send the form today. Thank", cut_off=True) == Spoken(
        "Sure. I will send the form today.", frozenset({CUT_AT_SENTENCE})
    )


def test_an_answer_cut_at_the_token_limit_before_its_first_full_stop_has_nothing_sayable() -> None:
    assert spoken("I will send the form today and then", cut_off=True) == Spoken(
        "", frozenset({CUT_AT_SENTENCE})
    )


def test_the_unfinished_item_of_a_cut_list_is_left_out() -> None:
    assert spoken("Try this:\n- restart the router\n- check the ca", cut_off=True) == Spoken(
        "Try this. restart the router", frozenset({CUT_AT_SENTENCE, LIST, NEWLINES})
    )


def test_an_answer_that_finished_is_not_cut_for_lacking_a_full_stop() -> None:
    assert spoken("I will send the form today").text == "I will send the form today"


def test_an_answer_cut_right_after_a_full_stop_loses_nothing() -> None:
    assert spoken("I will send the form today.", cut_off=True) == Spoken("I will send the form today.")


def test_a_long_answer_is_capped_at_the_last_sentence_that_fits() -> None:
    answer = "Your parcel left the depot today. " * 5 + "It arrives on Friday."

    assert spoken(answer, max_chars=110) == Spoken(
        "Your parcel left the depot today. Your parcel left the depot today. Your parcel left the depot "
        "today.",
        frozenset({CAPPED}),
    )


def test_a_first_sentence_longer_than_the_cap_is_cut_at_its_last_clause_break() -> None:
    answer = "I checked your account, your order and your refund, and everything looks fine to me so far."

    assert spoken(answer, max_chars=60) == Spoken(
        "I checked your account, your order and your refund.", frozenset({CAPPED})
    )


def test_a_first_sentence_longer_than_the_cap_without_a_clause_break_is_cut_after_a_whole_word() -> None:
    said = spoken("I checked everything on your account and it all looks fine", max_chars=40).text

    assert said == "I checked everything on your account."
    assert len(said) <= 40


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("Dr. Smith calls at 3.30 tomorrow. Is th", "Dr. Smith calls at 3.30 tomorrow."),
        ("Ask J. Smith, e.g. at the desk. He kno", "Ask J. Smith, e.g. at the desk."),
    ],
)
def test_abbreviations_initials_and_decimals_do_not_end_a_sentence(answer: str, said: str) -> None:
    assert spoken(answer, cut_off=True).text == said


def test_an_answer_of_nothing_but_a_placeholder_has_nothing_sayable() -> None:
    assert spoken("[Your Name]") == Spoken("", frozenset({PLACEHOLDER}))


def test_a_small_models_letter_becomes_a_short_spoken_answer() -> None:
    letter = (
        "Dear Maria,\n\nThank you for reaching out about your order **48213**. Here is what I found:\n\n"
        "1. Your order was shipped on Monday.\n2. It will be delivered to [address] by Friday.\n"
        "3. You can track it at [this link](https://track.example.com).\n\nIf you have any other "
        "questions, please don't hesitate to contact us at XXX-XXX-XXXX. We are always happy to help "
        "you with anything you need, whether it is about your order, your account or our products, "
        "and we look forward to hearing from you again soon.\n\nBest regards,\nAlex\nCustomer Support"
    )

    said = spoken(letter)

    assert said.text == (
        "Thank you for reaching out about your order 48213. Here is what I found. "
        "Your order was shipped on Monday. You can track it at this link."
    )
    assert said.shaped == {SALUTATION, MARKDOWN, LIST, NEWLINES, PLACEHOLDER, SIGNOFF, CAPPED}
