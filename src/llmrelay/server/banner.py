"""What ``llmrelay serve`` prints once its socket is bound: where it listens and how to call it.

Pure: config and the bound port in, text out. It never shows a secret: the master key is not
printed, and a password in the state URL is masked (``redis://user:***@host``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from llmrelay.config import Config

_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "secret", "token", "key", "api_key"})


def banner(config: Config, *, port: int, workers: int) -> str:
    host = config.server.host
    scheme = "https" if config.server.tls is not None else "http"
    base = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    first = config.models[0].name if config.models else "MODEL"
    keyed = config.auth_required
    auth = (
        "keys required (Authorization: Bearer <key>)"
        if keyed
        else "open: no API key needed (set server.master_key to require keys)"
    )
    key_header = " -H 'Authorization: Bearer <key>'" if keyed else ""
    api_key = "<key>" if keyed else "<anything>"
    return "\n".join(
        [
            f"llmrelay listening on {base}  ({workers} worker(s))",
            f"  models: {', '.join(m.name for m in config.models)}",
            f"  auth:   {auth}",
            f"  state:  {mask_url(config.state.url or 'memory://')}",
            "  try:",
            f"    curl {base}/v1/chat/completions{key_header} -H 'content-type: application/json' \\",
            f'      -d \'{{"model": "{first}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'',
            f'    OpenAI SDK:    OpenAI(base_url="{base}/v1", api_key="{api_key}")',
            f'    Anthropic SDK: Anthropic(base_url="{base}", api_key="{api_key}")',
        ]
    )


def mask_url(url: str) -> str:
    """``url`` with the userinfo password and secret-looking query values replaced by ``***``.

    Only the secret parts are rewritten, in place: re-assembling a URL would normalise it
    (``sqlite:////abs/path`` would lose a slash).
    """
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        url = url.replace(parts.netloc, f"{userinfo.partition(':')[0]}:***@{hostport}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            masked = urlencode(
                [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*/"
            )
            url = url.replace("?" + parts.query, "?" + masked, 1)
    return url
