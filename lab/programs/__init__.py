"""Socket programs deployed to guests: C sources here, built on the host.

Shipped programs (all take numeric IPv4 or IPv6 addresses):
  replyhi ADDRESS PORT [COUNT]       TCP server: answers "hello" with "hi"
  hello ADDRESS PORT [COUNT]         TCP client of replyhi
  udpecho ADDRESS PORT [COUNT]       UDP echo server
  udpsend ADDRESS PORT [COUNT]       UDP client of udpecho ("ping N")
  concurrent ADDRESS PORT N          N parallel TCP connections to `replyhi … N`
  bulk-recv ADDRESS PORT             TCP bulk receiver, verifies the data
  bulk-send ADDRESS PORT BYTES [CHUNK]  TCP bulk sender, prints the rate
"""

from lab.programs.build import build_program, compiler_warnings, shipped_programs

__all__ = ["build_program", "compiler_warnings", "shipped_programs"]
