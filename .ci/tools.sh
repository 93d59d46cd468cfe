#!/usr/bin/env bash
# Installs the pinned clients and services the tests use. Idempotent: a tool
# already in $GOPATH/bin at the pinned version is reused, not rebuilt.
set -euo pipefail
GOBIN=$(go env GOPATH)/bin
export PATH="$GOBIN:$PATH"

# module@version  binary  package path
TOOLS=(
  "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 conformance github.com/opencontainers/distribution-spec/conformance"
  "github.com/google/go-containerregistry@v0.22.1 crane github.com/google/go-containerregistry/cmd/crane"
  "oras.land/oras@v1.3.6 oras oras.land/oras/cmd/oras"
  "github.com/regclient/regclient@v0.11.7 regctl github.com/regclient/regclient/cmd/regctl"
  "github.com/versity/versitygw@v1.8.0 versitygw github.com/versity/versitygw/cmd/versitygw"
  "helm.sh/helm/v3@v3.22.0 helm helm.sh/helm/v3/cmd/helm"
  "github.com/sigstore/cosign/v2@v2.6.5 cosign github.com/sigstore/cosign/v2/cmd/cosign"
  "github.com/distribution/distribution/v3@v3.1.2 registry github.com/distribution/distribution/v3/cmd/registry"
)

have() { # binary module version -> true when the installed binary was built from module@version
  local bin=$GOBIN/$1 mod=$2 ver=$3
  [[ -x $bin ]] || return 1
  go version -m "$bin" 2>/dev/null | awk -v m="$mod" -v v="$ver" '$1=="mod" && $2==m && $3==v {ok=1} END {exit !ok}'
}

for t in "${TOOLS[@]}"; do
  read -r modver bin pkg <<<"$t"
  mod=${modver%@*}; ver=${modver#*@}
  if have "$bin" "$mod" "$ver"; then
    echo "tools: $bin $ver cached"
  else
    echo "tools: installing $bin $ver"
    go install "$pkg@$ver"
  fi
done

need_apt=()
command -v skopeo >/dev/null || need_apt+=(skopeo)
# systemd-analyze verifies the example unit (deploy/systemd).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# The dashboard's browser tests (conformance/compliance_test.go) drive it with chromedp.
command -v chromium >/dev/null || need_apt+=(chromium)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
  echo "tools: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
echo "tools: ready"
