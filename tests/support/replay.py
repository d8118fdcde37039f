"""A caller who makes 60 calls, each stating one fact tied to a topic word, and on the 61st asks about
the first ones in other words (tests/memory/search/test_recall.py, bench/search_share.py)."""

from __future__ import annotations

import json
from typing import Any

from callmemory.devtools.stub_llm import summarise as stub_summary

KEPT_FACTS = 15

# (what the caller said in an early call, the answer's words, how they ask for it on call 61)
ASKED = [
    (
        "The serial number on my dishwasher is DW-4471-X.",
        "DW-4471-X",
        "Can you remind me what code is printed on the dishwasher?",
    ),
    ("My invoice number is INV-20931.", "INV-20931", "Which invoice was it that I mentioned?"),
    ("Our dog is called Biscuit.", "Biscuit", "Do you still know my dog's name?"),
    ("The gate code for the building is 7782.", "7782", "What opens the gate again?"),
    ("My car's licence plate is KX55 TRV.", "KX55 TRV", "What's registered on the car?"),
    ("The wifi password at the cabin is bluefjord88.", "bluefjord88", "How do I get online at the cabin?"),
    ("My dentist is Dr Okafor on Elm Street.", "Okafor", "Who was my dentist?"),
    ("The boiler is a Vaillant ecoTEC 832.", "ecoTEC 832", "What sort of boiler did I tell you I have?"),
    ("My landlord's name is Mrs Pereira.", "Pereira", "Remind me who my landlord is."),
    ("The parcel tracking reference is TRK99120.", "TRK99120", "Where is my parcel, what did it say on it?"),
    ("My daughter goes to Hillcrest Primary.", "Hillcrest", "Which one is my daughter's school?"),
    ("We bought the fridge at Cooper Electric.", "Cooper Electric", "Where did the fridge come from?"),
    ("My insurance policy is POL-33817.", "POL-33817", "What's my insurance reference?"),
    ("The printer keeps showing error E-204.", "E-204", "What did the printer display?"),
    ("Our cat is named Pickle.", "Pickle", "And what is the cat called?"),
    ("The bike lock combination is 3914.", "3914", "How do I open the lock on my bike?"),
    ("My passport expires in August 2029.", "August 2029", "When does my passport run out?"),
    ("The plumber who came was Dave Ruiz.", "Dave Ruiz", "Who was that plumber you sent?"),
]
FILLER_TOPICS = [
    "garage",
    "kettle",
    "mortgage",
    "pharmacy",
    "laptop",
    "sofa",
    "roof",
    "pension",
    "gym",
    "library",
    "microwave",
    "vet",
    "freezer",
    "doorbell",
    "tablet",
    "mattress",
    "heater",
    "lawnmower",
    "curtain",
    "chimney",
    "oven",
    "shower",
    "window",
    "fence",
    "thermostat",
    "blender",
    "router",
    "camera",
    "headphones",
    "toaster",
    "wardrobe",
    "carpet",
    "scooter",
    "radiator",
    "ceiling",
    "speaker",
    "boat",
    "tent",
    "piano",
    "aquarium",
    "trampoline",
    "greenhouse",
]


def bounded_summary(kept: int) -> Any:
    """The stub LLM's summary job, keeping only the last `kept` facts in the rolling summary."""

    def summarise(messages: list[dict[str, Any]]) -> str:
        request = json.loads(messages[-1]["content"])
        # The stub's own summary of the call: what the caller said, quoted.
        said = [json.loads(stub_summary(messages))["call_summary"].removeprefix("The caller said: ")]
        previous = [f for f in (request["previous_summary"] or "").split(" | ") if f]
        facts = [*previous, *said][-kept:]
        return json.dumps(
            {
                "call_summary": " ".join(said),
                "caller_summary": " | ".join(facts),
                "profile": {},
                "next_greeting": "Welcome back!",
            }
        )

    return summarise


def stated() -> list[str]:
    early = [fact for fact, _, _ in ASKED]
    return early + [
        f"The {topic} reference I was given is {topic[:3].upper()}-{n:04d}."
        for n, topic in enumerate(FILLER_TOPICS)
    ]
