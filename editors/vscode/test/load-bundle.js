// Loads the bundled extension outside VS Code, with a stand-in for the `vscode` module
// (the one module esbuild leaves external), and checks it exports activate/deactivate.
// .ci/run runs it on the bundle unpacked from the .vsix, away from any node_modules, so
// it fails if the bundle still needs a dependency the package does not ship.
"use strict";

const Module = require("module");
const stub = (name) =>
  new Proxy(class {}, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop === "symbol") return undefined;
      return (target[prop] = stub(`${name}.${String(prop)}`));
    },
  });
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === "vscode") return stub("vscode");
  return load.apply(this, arguments);
};
const path = require("path");
const ext = require(path.resolve(process.argv[2]));
if (typeof ext.activate !== "function" || typeof ext.deactivate !== "function") {
  console.error("the bundle exports no activate/deactivate");
  process.exit(1);
}
console.log("bundle loads; exports:", Object.keys(ext).join(", "));
