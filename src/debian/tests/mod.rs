//! Tests against real Debian packages (downloaded with `apt-get download` at test time), hostile
//! synthetic packages, and the real tools as oracles (`dpkg-deb`, `dpkg-query`, `update-ca-certificates`,
//! `ldconfig`).
mod cabundle_oracle;
mod dpkgdb_oracle;
mod hostile;
mod ldcache_oracle;
mod real_debs;
mod support;
