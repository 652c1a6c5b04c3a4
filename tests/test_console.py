"""`fanzha chat` in a real terminal session (pexpect)."""

from __future__ import annotations

import sys

import pexpect


def spawn(env):
    child = pexpect.spawn(sys.executable, ["-m", "bot", "chat"], env=env, encoding="utf-8", timeout=30)
    child.expect("反诈小助手")
    return child


def test_console_conversation(fanzha_env):
    child = spawn({**fanzha_env, "TERM": "xterm"})
    child.sendline("我是公安局民警，你的账户涉嫌洗钱，必须把钱转到安全账户，不要告诉家人")
    child.expect("高风险")
    child.expect("你是否已经转账")
    child.sendline("1")  # the numbered quick answer: already paid
    child.expect("110")
    child.sendline("/help")
    child.expect("我能帮您")
    child.sendline("")
    child.expect("没有收到文字")
    child.sendline("😀😀😀")
    child.expect("没有我能读的文字")
    child.sendline("\x16\x02\x16\x05\x16\x1f")  # literal control characters (readline's quoted-insert)
    child.expect("没有我能读的文字")
    child.sendline("好" * 3000)
    child.expect("助手")
    child.sendline("/quit")
    child.expect("再见")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_console_ends_cleanly_on_end_of_input(fanzha_env):
    child = spawn(fanzha_env)
    child.sendline("你好")
    child.expect("把可疑的短信")
    child.expect("你：")
    # readline may switch the terminal mode just after the prompt, discarding a Ctrl-D typed
    # in that instant (as a person could, too): press it again until the chat says goodbye.
    for _ in range(20):
        child.sendeof()
        if child.expect(["再见", pexpect.TIMEOUT], timeout=0.5) == 0:
            break
    else:
        raise AssertionError("Ctrl-D did not end the chat")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
