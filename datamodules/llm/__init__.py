"""Language models behind OpenAI-compatible endpoints: the client and the LLM teacher."""

from datamodules.llm.client import ChatClient, Completion, EndpointConfig, EndpointError, read_api_key
from datamodules.llm.teacher import RULES, LLMTeacher, TeacherContext, make_teacher, teacher_messages

__all__ = [
    "RULES",
    "ChatClient",
    "Completion",
    "EndpointConfig",
    "EndpointError",
    "LLMTeacher",
    "TeacherContext",
    "make_teacher",
    "read_api_key",
    "teacher_messages",
]
