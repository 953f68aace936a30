"""A sender killed the instant the SMTP server accepted its message (test_sending.py runs it as
a child process): the clock read that would stamp the record ends the process, as a kill -9
between acceptance and record would."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from notice_world import PREFIX, notices_of, policy_for, subject_from

from controller.adapters.addresses import KalturaAddresses
from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.smtp import Mailer
from controller.adapters.storage.writer import S3Archive
from controller.runtime.notices import NoticeStore, Sending, send_notices, timing
from policies.notices import assess


def killed() -> float:
    os._exit(137)


def main(args_file: str) -> None:
    args = json.loads(Path(args_file).read_text())
    env = args["env"]
    os.environ.update(env)
    policy = policy_for(env, Path(args["dir"]))
    notices = notices_of(policy)
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    store = NoticeStore(S3Archive(client, env["KARCHIVE_BUCKET"]), PREFIX)
    chosen = [subject_from(raw) for raw in args["subjects"]]
    sending = Sending(notices, policy.kaltura.partner_id, policy.restore_on_play, store,
                      Mailer(notices.smtp), KalturaAddresses(KalturaSession(policy.kaltura)),
                      clock=killed)
    verdicts = assess(chosen, store.load(), timing(notices), args["now"])
    send_notices(verdicts, sending, args["now"])
    sys.exit("the sender was not killed: the message was never accepted")


if __name__ == "__main__":
    main(sys.argv[1])
