/* The entprog sub-commands; each parses its own arguments and returns an exit code. */
#pragma once

int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_datagen(int argc, char **argv);
int cmd_cei(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
