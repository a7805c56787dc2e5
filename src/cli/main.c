/* main.c - the shipped binary: no native tools of its own (see sio/tool.h
 * for building one that has some). */
#include "sio/tool.h"

int main(int argc, char **argv, char **envp) {
    return sio_main(argc, argv, envp);
}
