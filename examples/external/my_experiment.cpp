// A user's experiment: one file that includes plateau.h, registers itself, and gets the runner's
// command line (run, sweep, eval, list) from its main.
#include "plateau.h"

using namespace plateau;

// Fits y = 3x − 1 with one linear unit and SGD, logging the loss every epoch.
PLATEAU_EXPERIMENT(fit_line, "fits a line with SGD (the external-project example)",
                   (runner::Config{{"epochs", "20"}, {"lr", "0.1"}})) {
  manual_seed(run.seed());
  Tensor x = normal({64, 1});
  Tensor y = 3.0 * x - 1.0;
  nn::Linear model(1, 1);
  optim::SGD sgd(model.parameters(), {.lr = run.config().get_double("lr")});
  double loss_value = 0;
  for (int64_t epoch = 1; epoch <= run.config().get_int("epochs"); ++epoch) {
    Tensor loss = mse_loss(model(x), y);
    sgd.step(grad({loss}, model.parameters()));
    loss_value = loss.item();
    run.log({{"epoch", epoch}, {"train_loss", loss_value}});
  }
  run.set_result({{"final_loss", loss_value}});
  std::printf("loss after %lld epochs: %.6f\n", static_cast<long long>(run.config().get_int("epochs")), loss_value);
  return 0;
}

int main(int argc, char** argv) { return runner::cli_main(argc, argv); }
