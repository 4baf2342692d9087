# Shared by scripts/screenshot-email, scripts/screenshot-archive and
# scripts/a11y (sourced, not run): installs the outside checkers and builds
# the sample's email and web archive in a scratch copy of the project.
#
# Checkers come from Debian (chromium, chromium-driver, a Java runtime, npm)
# and from npm (vnu-jar: the Nu HTML checker; @axe-core/cli), installed
# under target/checkers/ with versions pinned. @axe-core/cli is installed
# with --ignore-scripts: its `chromedriver` dependency would download a
# driver of its own at install time; Debian's chromium-driver is used
# instead. Needs root and apt the first time.

VNU_VERSION=26.9.27
AXE_CLI_VERSION=4.13.0
checkers="$PWD/target/checkers"

apt_install() {
  if [ -z "${apt_updated:-}" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver fonts-dejavu-core
  fi
}

need_npm() {
  command -v npm >/dev/null || apt_install npm
}

need_vnu() {
  command -v java >/dev/null || apt_install default-jre-headless
  need_npm
  vnu_jar="$checkers/node_modules/vnu-jar/build/dist/vnu.jar"
  if [ ! -f "$vnu_jar" ]; then
    npm install --prefix "$checkers" --no-audit --no-fund --loglevel=error "vnu-jar@$VNU_VERSION" >/dev/null
  fi
}

need_axe() {
  need_chromium
  need_npm
  axe_bin="$checkers/node_modules/.bin/axe"
  if [ ! -x "$axe_bin" ]; then
    npm install --prefix "$checkers" --no-audit --no-fund --loglevel=error --ignore-scripts \
      "@axe-core/cli@$AXE_CLI_VERSION" >/dev/null
  fi
}

# A scratch copy of the sample project in $work (removed on exit), and the
# debug binary in $bin.
sample_copy() {
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r content templates dailyissue.toml subscribers.example.csv "$work/"
  cargo build --quiet
  bin="$PWD/target/debug/dailyissue"
}

# The sample issue of $1 as Ada (the first reader) sees it: $email_html.
build_email() {
  "$bin" -C "$work" preview --date "$1" --out "$work/preview/" >/dev/null 2>&1
  email_html="$work/preview/$1.html"
  [ -f "$email_html" ] || { echo "FAIL: preview wrote no $email_html" >&2; exit 1; }
}

# The archive of 30 planned issues from 2027-03-01: $site, and one term
# page in $term_page (the first issue's term).
build_archive() {
  "$bin" -C "$work" plan --date 2027-03-01 --days 30 >/dev/null 2>&1
  "$bin" -C "$work" archive --all >/dev/null
  site="$work/public"
  term="$(sed -n 's/^term = "\(.*\)"$/\1/p' "$work/issues/2027-03-01.toml")"
  term_page="glossary/$term/index.html"
}

# Headless Chromium with a throwaway profile.
chrome() {
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$work/profile" "$@" 2>/dev/null
}

# The same in dark mode (prefers-color-scheme: dark).
chrome_dark() {
  chrome --blink-settings=preferredColorScheme=0 --force-dark-mode "$@"
}

# Fails when the page at file://$1 scrolls sideways in a $2 px wide frame.
fits_width() {
  local path="$1" width="$2" result sw cw
  cat > "$work/measure.html" <<HTML
<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="file://$path" style="width:${width}px;height:3000px;border:0"></iframe>
<script>
document.getElementById('f').onload = function () {
  var d = this.contentDocument.documentElement;
  document.body.setAttribute('data-result', 'scrollWidth=' + d.scrollWidth + ' clientWidth=' + d.clientWidth);
};
</script></body></html>
HTML
  result="$(chrome --allow-file-access-from-files --virtual-time-budget=3000 --dump-dom "file://$work/measure.html" | grep -o 'scrollWidth=[0-9]* clientWidth=[0-9]*' | head -1)"
  sw="${result#scrollWidth=}"; sw="${sw%% *}"; cw="${result##*clientWidth=}"
  if [ -z "$sw" ] || [ "$sw" -gt "$cw" ]; then
    echo "FAIL: ${path#"$work"/} scrolls sideways at $width px ($result)" >&2
    return 1
  fi
  echo "ok: ${path#"$work"/} fits $width px ($result)"
}

# The Nu HTML checker's errors for the files given, one a line
# (`"FILE":LINE.COL-LINE.COL: error: MESSAGE`), on stdout.
vnu_errors() {
  java -jar "$vnu_jar" --errors-only --format gnu "$@" 2>&1 || true
}
