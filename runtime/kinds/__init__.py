"""One parser per accepted API; `runtime.parse.KINDS` maps (apiVersion, kind) to them."""
