// Messages about jobs that more than one backend gives, so that preforkctl says the same
// thing whatever the source.
#pragma once

#include <string>

namespace preforkd {

// `preforkctl retry ID` of a job whose unique key another job holds now.
std::string unique_key_held_message(const std::string& id, const std::string& unique_key,
                                    const std::string& holder_id, const std::string& holder_state);

}  // namespace preforkd
