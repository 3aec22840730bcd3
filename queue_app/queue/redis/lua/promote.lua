-- Move due delayed/retrying jobs into their stream and prune expired index members.
-- ARGV 8: max jobs to promote. Returns {promoted, ms until the next due job or -1}.
local next_due, promoted = promote_due(tonumber(ARGV[8]))
return {promoted, next_due}
