"""Pushing a saved directory (an MLM stage, a fine-tune, an export) to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

from sec_cybert.errors import SecCybertError

#: What :func:`push_to_hub` leaves out: resume points (optimizer states, several copies of the
#: weights) and the record of a start, which only matters on the machine that trained.
#: ``validation-set/`` is the masked validation split an MLM stage keeps for the ablation: corpus
#: text, not model.
PUSH_IGNORE = ("checkpoints/*", "validation-set/*", "stage-started.json", "*.part")


class HubError(SecCybertError):
    """The Hugging Face Hub could not be reached, or refused the upload."""


def push_to_hub(directory: Path | str, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload a saved directory (an MLM stage, a fine-tune, an export) to the model repo
    ``repo_id``, created private unless ``private=False``; return the commit's URL.

    Resume checkpoints and ``stage-started.json`` stay behind (``PUSH_IGNORE``); the card,
    ``stage.json`` and the training log go up. ``token`` defaults to the login of
    ``hf auth login`` or ``HF_TOKEN``. An offline machine, a missing or refused token and an
    unreachable hub are each one :class:`HubError` line.
    """
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise HubError(
            f"{directory} is not a saved model directory (no config.json); push a stage's output "
            "directory (dapt, tapt, finetune-<variant>) or an exported head"
        )
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise HubError(f"pushing to the hub needs huggingface_hub ({exc})") from None
    # The HTTP client's own error class (httpx, httpx2 or requests, by huggingface_hub version):
    # a connection that failed before the hub answered.
    transport = tuple(c for c in HfHubHTTPError.__bases__ if not issubclass(c, OSError))

    where = f"cannot push {directory} to the Hugging Face Hub repo {repo_id}"
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(directory),
            commit_message=f"Upload {directory.name} (sec_cybert)",
            ignore_patterns=list(PUSH_IGNORE),
        )
    except OfflineModeIsEnabled:
        raise HubError(f"{where}: offline mode is on (HF_HUB_OFFLINE); push from a machine with network access") from None
    except LocalTokenNotFoundError:
        raise HubError(f"{where}: not logged in; run `hf auth login`, set HF_TOKEN, or pass token=") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            reason = "the hub refused the token (401); run `hf auth login` or set HF_TOKEN to a valid token"
        elif status == 403:
            reason = "the token may not write there (403); use a token with write access to that namespace"
        else:
            reason = f"the hub answered {status or 'an error'}: {_first_line(exc)}"
        raise HubError(f"{where}: {reason}") from None
    except (*transport, ConnectionError, TimeoutError) as exc:
        raise HubError(f"{where}: the hub is unreachable ({type(exc).__name__}: {_first_line(exc)}); check the network") from None
    return str(getattr(commit, "commit_url", None) or getattr(commit, "repo_url", None) or repo_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
