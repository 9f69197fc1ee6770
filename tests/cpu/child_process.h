// Runs the real `cu3d` binary as a child process, for the tests that must kill it (SIGKILL at a
// random moment) or limit it. The binary is the one built next to the test binary (CMake makes
// cu3d_tests depend on cu3d).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cu3d::testing {

// build/cu3d beside build/cu3d_tests; empty when it is not there.
inline std::filesystem::path cu3d_binary() {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return {};
  const auto binary = self.parent_path() / "cu3d";
  return std::filesystem::is_regular_file(binary) ? binary : std::filesystem::path();
}

// Starts `binary args...` with `env` ("NAME=value") added to this process's environment and
// stdout and stderr appended to `log`. Returns the child's pid.
inline pid_t spawn(const std::filesystem::path& binary, const std::vector<std::string>& args,
                   const std::vector<std::string>& env, const std::filesystem::path& log) {
  std::vector<std::string> argv_text = {binary.string()};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text = env;
  for (char** e = environ; *e != nullptr; ++e)
    env_text.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_text)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec: this process has threads
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for the child; returns its wait status.
inline int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace cu3d::testing
