#include "demo/strategy_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace podlb::demo {

void RegisterAllStrategies(StrategyCatalog& catalog) {
  RegisterBaselineStrategies(catalog);
  RegisterPodlbStrategies(catalog);
}

std::vector<std::string> DefaultStrategies(const StrategyCatalog& catalog) {
  return catalog.names();
}

ClusterFactory DefaultClusterFactory() { return MakeSandboxCluster; }

int PickFreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace podlb::demo
