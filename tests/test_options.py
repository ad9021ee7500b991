"""The separation flags (cli.py) and SeparationOptions (separation.py): one set of choices, two places."""

import cli
from separation import SeparationOptions


def parsed(*argv):
    parser = cli.ArgumentParser()
    cli.add_separation_flags(parser)
    return parser.parse_args(list(argv))


def test_the_flags_defaults_are_the_options_defaults():
    # cli.py imports no project module, so its defaults are literals: they must stay SeparationOptions()'s.
    assert SeparationOptions.from_dict(vars(parsed())) == SeparationOptions()


def test_every_option_has_its_flag_and_comes_back_from_its_dict():
    options = SeparationOptions.from_dict(vars(parsed("--reconstruction", "lab", "--network-input", "patches")))
    assert options == SeparationOptions(reconstruction="lab", network_input="patches")
    assert set(options.to_dict()) <= set(vars(parsed()))  # no option without its flag
    assert SeparationOptions.from_dict({**options.to_dict(), "format": "wav"}) == options  # a record's other keys
