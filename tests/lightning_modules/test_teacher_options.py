"""``reflection: teacher`` (whose reflections the policy reads) and ``teacher: rules`` (which teacher writes the SFT
data's) are different options; neither takes the other's value."""

import pytest

from datamodules.llm.teacher import RULES, check_teacher_spec
from lightning_modules.agent import TEACHER, Agent


def test_each_option_refuses_the_other_ones_value():
    assert TEACHER != RULES
    check_teacher_spec(RULES)
    with pytest.raises(ValueError, match="teacher must be 'rules'"):
        check_teacher_spec(TEACHER)
    with pytest.raises(ValueError, match="reflector must be a Reflector, 'teacher' or None, got 'rules'"):
        Agent(None, None, None, RULES)
