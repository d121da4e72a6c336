// Ready the compose stack's MongoDB: initiate its one-member replica set (once), wait for it to
// elect itself primary, then make or update one user per service with readWrite on its own
// database and read on the identity store's, and one for the key tools (readWrite on the
// identity store). Passwords come from the environment (<SERVICE>_MONGO_PASSWORD); none is
// printed. Run by the `mongo-setup` service with mongosh --nodb; safe to run again.
const env = process.env;
const prefix = env.AMENDS_DB_PREFIX || "amends";
const services = (env.AMENDS_DB_SERVICES || "").split(",").map((s) => s.trim()).filter(Boolean);

const conn = new Mongo("mongodb://mongo:27017/?directConnection=true");
const admin = conn.getDB("admin");
admin.auth(env.MONGO_ROOT_USERNAME, env.MONGO_ROOT_PASSWORD);

const initiated = admin.runCommand({ replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] } });
if (!initiated.ok && initiated.codeName !== "AlreadyInitialized") {
  throw new Error("replSetInitiate failed: " + initiated.errmsg);
}
for (let i = 0; !admin.runCommand({ hello: 1 }).isWritablePrimary; i++) {
  if (i > 60) throw new Error("the replica set elected no primary within 60s");
  sleep(1000);
}

function ensureUser(name, passwordVariable, roles) {
  const pwd = env[passwordVariable];
  if (!pwd) throw new Error("no password in the environment for: " + passwordVariable);
  if (admin.getUser(name)) {
    admin.updateUser(name, { pwd: pwd, roles: roles });
  } else {
    admin.createUser({ user: name, pwd: pwd, roles: roles });
  }
  print("ok  user " + name + ": " + roles.map((r) => r.role + "@" + r.db).join(", "));
}

for (const service of services) {
  ensureUser("amends_" + service, service.toUpperCase() + "_MONGO_PASSWORD", [
    { role: "readWrite", db: prefix + "_" + service },
    { role: "read", db: prefix + "_identity" },
  ]);
}
ensureUser("amends_identity", "IDENTITY_MONGO_PASSWORD", [{ role: "readWrite", db: prefix + "_identity" }]);
