// Rebuilds world-countries.geo.json from Natural Earth 110m (npm `world-atlas`, TopoJSON keyed by
// ISO 3166-1 numeric) as GeoJSON keyed by ISO 3166-1 alpha-2 (`properties.iso_a2`), coordinates
// rounded to 0.01 degree to keep the file small. Not shipped; see README.md in this folder.
//   node make_world_geojson.js WORLD_ATLAS_DIR TOPOJSON_CLIENT_DIR I18N_ISO_COUNTRIES_DIR > world-countries.geo.json
const [atlasDir, topoDir, isoDir] = process.argv.slice(2);
const topology = require(`${atlasDir}/countries-110m.json`);
const { feature } = require(`${topoDir}/dist/topojson-client.js`);
const codes = require(`${isoDir}/codes.json`);
const alpha2 = Object.fromEntries(codes.map(([a2, , numeric]) => [numeric, a2]));
const byName = { Kosovo: "XK" }; // no ISO numeric code; XK is the user-assigned code in common use
const round = (c) => (typeof c[0] === "number" ? c.map((v) => Math.round(v * 100) / 100) : c.map(round));
const world = feature(topology, topology.objects.countries);
world.features = world.features.map((f) => ({
  type: "Feature",
  properties: { iso_a2: alpha2[f.id] || byName[f.properties.name] || "", name: f.properties.name },
  geometry: { type: f.geometry.type, coordinates: round(f.geometry.coordinates) },
}));
process.stdout.write(JSON.stringify(world) + "\n");
