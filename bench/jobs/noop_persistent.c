/* A no-op persistent handler for the jobs bench: reads one JSON request a line
 * ({"attempt":N,"id":"..","payload":..,"queue":".."}) and answers {"id":"..","status":"ok"}.
 * preforkd writes the keys in sorted order, so the first "id": is the job's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char* line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    const char* id = strstr(line, "\"id\":\"");
    if (!id) continue;
    id += 6;
    const char* end = strchr(id, '"');
    if (!end) continue;
    printf("{\"id\":\"%.*s\",\"status\":\"ok\"}\n", (int)(end - id), id);
    fflush(stdout);
  }
  free(line);
  return 0;
}
