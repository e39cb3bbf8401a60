/* ec2-imaged command line: subcommand table, option parsing, exit codes. */
#include <stdio.h>

int main(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        fprintf(stderr, "ec2-imaged: not yet\n");
        return 1;
}
