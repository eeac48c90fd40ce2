#include "common/clock.h"

namespace weft::common {

RealClock& RealClock::Get() {
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace weft::common
