-- Argo CD health check for sitewise.operator.dev/SiteWiseAsset. It reads the same conditions
-- as kstatus (Flux, cli-utils): Stalled means a person must act, Ready means the asset is
-- ACTIVE, owned and as declared, and anything else is work in progress. Written for Lua 5.1
-- (Argo CD runs gopher-lua). Install: see deploy/argocd/argocd-cm-patch.yaml.
local hs = {status = "Progressing", message = "Waiting for the operator to observe the asset"}

local function find(conditions, type)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == type then return c end
  end
  return nil
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Deleting the asset in SiteWise"
  if obj.status ~= nil and obj.status.deletion ~= nil and obj.status.deletion.phase ~= nil then
    hs.message = hs.message .. " (" .. obj.status.deletion.phase .. ")"
  end
  return hs
end
if obj.status == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
local conditions = obj.status.conditions
local stalled = find(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  -- A stalled verdict stands for the generation it was reached for.
  if observed == nil or generation == nil or observed == generation then
    hs.status = "Degraded"
    hs.message = stalled.reason .. ": " .. (stalled.message or "")
    return hs
  end
end
if observed ~= nil and generation ~= nil and observed ~= generation then
  hs.message = "The operator has not observed generation " .. generation .. " yet"
  return hs
end
local ready = find(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "The asset is ready"
  return hs
end
if ready ~= nil then
  hs.message = ready.reason .. ": " .. (ready.message or "")
end
return hs
