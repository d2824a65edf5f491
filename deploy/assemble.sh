#!/bin/sh
# Runs inside the image build (deploy/Dockerfile), after `pnpm install --prod`: copies the production tree of the
# workspace from SRC to DEST in the workspace's own layout (package.json, dist/ and node_modules/ of every package
# but the test harness), drops compile by-products and other platforms' native binaries, and fails on any link
# that points nowhere (a production import of a development-only package would show up here).
set -eu
src=$1
dest=$2
arch=$(node -p process.arch) # x64 | arm64: the native binaries kept

mkdir -p "$dest"
cp -a "$src/package.json" "$src/pnpm-workspace.yaml" "$src/node_modules" "$dest/"
for dir in "$src"/packages/* "$src"/services/*; do
  pkg=${dir#"$src"/}
  [ "$pkg" = packages/testing ] && continue # the test harness: a development dependency only
  [ "$pkg" = packages/simulator ] && continue # the traffic simulator (bench:loop, tests): a development tool
  [ -d "$dir/dist" ] || { echo "assemble: $pkg has no dist/ (not built)" >&2; exit 1; }
  mkdir -p "$dest/$pkg"
  cp -a "$dir/package.json" "$dir/dist" "$dest/$pkg/"
  if [ -d "$dir/node_modules" ]; then cp -a "$dir/node_modules" "$dest/$pkg/"; fi
done
cp -a "$src/services/reranking/rules.example.yaml" "$dest/services/reranking/"

# Compile by-products: declarations, source maps, build info and the compiled unit tests.
find "$dest/packages" "$dest/services" -path '*/dist/*' -type f \
  \( -name '*.d.ts' -o -name '*.map' -o -name '*.tsbuildinfo' -o -name '*.spec.js' \) -delete
# Native binaries of other platforms: onnxruntime-node ships every OS and CPU, node-gyp-build packages their prebuilds.
for ort in "$dest"/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v*; do
  find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +
done
find "$dest/node_modules/.pnpm" -type d -name prebuilds -prune | while read -r prebuilds; do
  find "$prebuilds" -mindepth 1 -maxdepth 1 ! -name "linux-$arch*" -exec rm -rf {} +
done
# usearch ships its C/C++ sources for a local compile; the prebuilt addon above is what loads.
for usearch in "$dest"/node_modules/.pnpm/usearch@*/node_modules/usearch; do
  rm -rf "$usearch/c" "$usearch/cpp" "$usearch/cmake" "$usearch/include" "$usearch/numkong"
done

# pnpm's hidden hoisting links every workspace package; the ones left out above (the harness, the tests) go too.
find "$dest/node_modules/.pnpm/node_modules/@recsys" -xtype l -delete
dangling=$(find "$dest" -xtype l)
if [ -n "$dangling" ]; then
  echo "assemble: links that point nowhere:" >&2
  echo "$dangling" >&2
  exit 1
fi
echo "assemble: $(du -sm "$dest" | cut -f1) MiB in $dest" >&2
