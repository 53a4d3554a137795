// Subcommands of the tessera binary. Each returns the process exit code; errors that
// come from outside (bad files, bad flags) are thrown as tessera::Error and reported
// by main() with a non-zero exit.
#pragma once

namespace tessera::cli {

int run_generate(int argc, char** argv);  // tessera generate ...
int run_inspect(int argc, char** argv);   // tessera inspect PATH
int run_bench(int argc, char** argv);     // tessera bench ...
int run_score(int argc, char** argv);     // tessera score ...
int run_serve(int argc, char** argv);     // tessera serve ...

}  // namespace tessera::cli
