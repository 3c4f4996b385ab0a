#!/usr/bin/env bash
# From a fresh machine to a verified multi-arch release and a GitOps commit, on the embedded
# default: local registry 127.0.0.1:5000 and a local GitOps repository (.buildctl/gitops.git,
# seeded from k8s-specifications/ the first time).
#
#   bash scripts/quickstart.sh            # set up everything, then `buildctl run`
#   bash scripts/quickstart.sh plan       # any buildctl arguments instead of `run`
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/stack.sh up
bash scripts/install.sh >/dev/null

gitops=.buildctl/gitops.git
if [ ! -d "$gitops" ]; then
  echo "quickstart: seeding the local GitOps repository $gitops from k8s-specifications/" >&2
  seed=$(mktemp -d)
  git init -q -b main "$seed"
  cp -r k8s-specifications "$seed/"
  git -C "$seed" add -A
  git -C "$seed" -c user.name=buildctl -c user.email=buildctl@localhost commit -qm "Initial manifests"
  mkdir -p .buildctl
  git clone -q --bare "$seed" "$gitops"
  rm -rf "$seed"
fi

export BUILDCTL_TAG=${BUILDCTL_TAG:-$(date -u +%Y%m%d-%H%M%S)}
if [ "$#" -eq 0 ]; then set -- run; fi
exec .venv/bin/buildctl "$@"
