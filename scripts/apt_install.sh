# Sourced by the set-up scripts that need Debian packages: apt_install PKG... (as root, else through sudo).
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  fi
}
