#!/usr/bin/env bash
# The demo: a real control plane, the SiteWise emulator seeded with the plant's asset models
# only, and the operator running as its ServiceAccount. It applies deploy/samples/plant.yaml
# (15 assets the operator creates and links into a tree), shows the resources and the tree in
# SiteWise, deletes one area's subtree and then the rest, showing events and the emulator's
# view as it goes, and ends with a summary. Everything it starts is stopped on exit or Ctrl-C.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
work="$repo/.dev-cluster"
mkdir -p "$work"
NS=plant
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
pids=()
cleanup() {
  say "stopping everything the demo started"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "building the control plane (first run: about 10 minutes, then cached under \$HOME)"
KUBEBUILDER_ASSETS=$(bash scripts/build-control-plane.sh | tail -n 1)
export KUBEBUILDER_ASSETS

say "building sitewise-operator, sitewise-emulator and sitewise-testcluster"
cargo build --workspace --bins --locked 2>&1 | tail -n 2
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug

say "starting etcd, kube-apiserver and kube-controller-manager"
export KUBECONFIG="$work/kubeconfig"
rm -f "$KUBECONFIG"
"$bin/sitewise-testcluster" up --kubeconfig "$KUBECONFIG" --crds crds/sitewise-crds.yaml \
  > "$work/testcluster.out" 2> "$work/testcluster.log" &
pids+=($!)
for _ in $(seq 1 240); do
  grep -q ready "$work/testcluster.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/testcluster.log"; exit 1; }
  sleep 0.5
done
grep -q ready "$work/testcluster.out" || { echo "control plane did not start"; cat "$work/testcluster.log"; exit 1; }
tail -n 1 "$work/testcluster.log"

say "installing the operator's RBAC (deploy/rbac.yaml) and a ServiceAccount token"
kubectl apply -f deploy/rbac.yaml
token=$(kubectl create token sitewise-operator -n sitewise-system --duration=2h)
server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
cat > "$work/operator.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: sitewise-operator, user: {token: "$token"}}]
contexts: [{name: demo, context: {cluster: demo, user: sitewise-operator}}]
current-context: demo
EOF

say "starting the SiteWise emulator with the plant's models (published quotas, 1 s create and update, 2 s delete)"
emu_port=$(free_port)
EMU="http://127.0.0.1:$emu_port"
"$bin/sitewise-emulator" --bind "127.0.0.1:$emu_port" --seed deploy/samples/plant-models.json \
  --create-delay 1s --update-delay 1s --delete-delay 2s > "$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "$EMU/_emulator/health" >/dev/null && break; sleep 0.2; done
emu_view() {
  curl -s "$EMU/_emulator/state" | python3 -c '
import json, sys
s = json.load(sys.stdin)
states = {}
for a in s["assets"]:
    states[a["state"]] = states.get(a["state"], 0) + 1
print("    emulator: %d assets %s, %d associations" % (len(s["assets"]), states, len(s["associations"])))'
}
emu_tree() {
  curl -s "$EMU/_emulator/state" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assets = {a["id"]: a for a in s["assets"]}
children = {}
for link in s["associations"]:
    children.setdefault(link["parentId"], []).append(link["childId"])
linked = {l["childId"] for l in s["associations"]}
def show(i, depth):
    a = assets[i]
    owner = a["tags"].get("sitewise.operator.dev/owner-resource", "-")
    print("    %s%s  [%s, owned by %s]" % ("  " * depth, a["name"], a["state"], owner))
    for c in sorted(children.get(i, []), key=lambda c: assets[c]["name"]):
        show(c, depth + 1)
for root in sorted((i for i in assets if i not in linked), key=lambda i: assets[i]["name"]):
    show(root, 0)'
}
emu_view

say "starting the operator (as the ServiceAccount, against the emulator)"
admin_port=$(free_port)
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true \
  "$bin/sitewise-operator" run --kubeconfig "$work/operator.kubeconfig" \
  --sitewise-endpoint "$EMU" --region us-east-1 --admin-addr "127.0.0.1:$admin_port" \
  --poll-interval 1s --resync 1m > "$work/operator.log" 2>&1 &
pids+=($!)

say "applying deploy/samples/plant.yaml in namespace $NS: 15 SiteWiseAssets the operator creates"
kubectl create namespace "$NS"
kubectl apply -n "$NS" -f deploy/samples/plant.yaml
kubectl wait -n "$NS" --for=condition=Ready sitewiseasset --all --timeout=120s >/dev/null
kubectl get sitewiseassets -n "$NS"
say "the tree in SiteWise, as the operator created and linked it"
emu_tree
say "events of the created machine machine-packaging-1-1"
kubectl get events.events.k8s.io -n "$NS" --field-selector regarding.name=machine-packaging-1-1 \
  --sort-by=.metadata.creationTimestamp -o custom-columns=REASON:.reason,NOTE:.note | head -n 8

wait_gone() { # label selector or --all
  local selector=("$@")
  for _ in $(seq 1 120); do
    left=$(kubectl get sitewiseassets -n "$NS" "${selector[@]}" --no-headers 2>/dev/null | wc -l)
    printf '    %s resources left; ' "$left"
    emu_view
    [[ "$left" -eq 0 ]] && return 0
    sleep 2
  done
  echo "deletion did not finish in time"; return 1
}

say "deleting the packaging area (7 resources: area, 2 lines, 4 machines) as a GitOps prune would"
kubectl delete sitewiseassets -n "$NS" -l plant.example.com/area=packaging --wait=false
wait_gone -l plant.example.com/area=packaging
kubectl get sitewiseassets -n "$NS"
say "events of the deleted line line-packaging-1"
kubectl get events.events.k8s.io -n "$NS" --field-selector regarding.name=line-packaging-1 \
  --sort-by=.metadata.creationTimestamp -o custom-columns=REASON:.reason,NOTE:.note | head -n 12

say "deleting everything that is left"
kubectl delete sitewiseassets -n "$NS" --all --wait=false
wait_gone

say "summary"
curl -s "$EMU/_emulator/counters" | python3 -c '
import json, sys
c = json.load(sys.stdin)
calls = sum(sum(v.values()) for v in c.values())
deleted = c.get("DeleteAsset", {}).get("ok", 0)
created = c.get("CreateAsset", {}).get("ok", 0)
throttles = sum(v.get("ThrottlingException", 0) for v in c.values())
print(f"    assets created: {created}, deleted: {deleted}")
print(f"    SiteWise calls made: {calls}")
print(f"    throttles met: {throttles}")
for op, outcomes in sorted(c.items()):
    print(f"      {op}: {outcomes}")'
emu_view
echo "    operator log: $work/operator.log; metrics were at http://127.0.0.1:$admin_port/metrics"
