"""draw_split round by round: a later labelling round never moves an earlier round's messages."""

from components.screening.real_labels import RealLabel, draw_split


def _label(id_: str, group: str, level: str, round_: int) -> RealLabel:
    categories = () if level == "none" else ("suicide",)
    return RealLabel(id_, "cpsycound", group, level, categories, "train", "a note", round_)  # type: ignore[arg-type]


def test_a_later_round_leaves_the_earlier_split_alone_and_its_joiners_follow_their_group():
    first = [_label(f"a{n}", f"a{n}", "urgent" if n < 4 else "none", 1) for n in range(40)]
    first_split = draw_split(first)
    # Round 2: new groups, and an urgent message that nearly duplicates a round-1 "none" message.
    joiner_group = next(label.group for label in first if first_split[label.id] == "test" and label.label == "none")
    second = [_label(f"b{n}", f"b{n}", "urgent" if n < 10 else "none", 2) for n in range(60)]
    second.append(_label("b-joiner", joiner_group, "urgent", 2))
    both = draw_split(first + second)
    assert {id_: both[id_] for id_ in first_split} == first_split
    assert both["b-joiner"] == "test"
    own = [label for label in second if label.group != joiner_group]
    assert sum(both[label.id] == "test" for label in own if label.label == "urgent") == 3  # 30 % of 10
    assert sum(both[label.id] == "test" for label in own if label.label == "none") == 15  # 30 % of 50
