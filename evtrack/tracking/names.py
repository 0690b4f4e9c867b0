"""Random, readable run names: ``<adjective>-<noun>-<number>``, as MLflow makes them."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agile amber ample bold brave bright brisk calm clever crisp curious daring deft eager "
    "earnest fair fancy fearless fleet gentle glad golden grand handsome happy hardy honest "
    "humble jolly keen kind lively lucid merry mighty modest neat nimble noble patient placid "
    "polite proud quick quiet rare ready regal robust rosy shiny silent sleek smart snappy "
    "sober spry stately steady stormy sturdy sunny swift tender thrifty tidy upbeat valiant "
    "vivid warm wise witty zealous"
).split()
_NOUNS = (
    "ant badger bat bear bee bison boar carp cat cod colt crab crane crow deer doe dove "
    "eagle eel elk falcon finch fish fox frog gnat goat goose gull hare hawk hen heron horse "
    "ibis jay kite koala lark lemur lion lynx mole moose moth mouse newt owl ox panda pig "
    "pony quail ram raven robin seal shark sheep shrew skunk slug snail snake sow squid stork "
    "swan tern toad trout vole wasp whale wolf worm wren yak zebra"
).split()


def random_run_name(rng: random.Random | None = None) -> str:
    """A name like ``brave-otter-417``."""
    r = rng or random
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randrange(1000)}"
